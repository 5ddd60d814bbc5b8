"""Whole models for the end-to-end tests: hand-written convnets, an MLP, nn.TransformerEncoderLayer and
tiny transformers models built offline from configs. Each builder returns (model, inputs); the seed
is fixed so weights and inputs are deterministic."""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# model -> why capture (kiln.compile) cannot yet trace its forward as one graph without a warning.
_TRANSFORMERS_WRAPPER = ("capture: the model builds its ModelOutput (a dataclass dict subclass) inside the trace, and "
                         "LLaMA's attention goes through the kernels package's wrapper: the forward graph-breaks into "
                         "several graphs (no frame runs eagerly; GPT-2's layers trace into one graph)")
CAPTURE_GAPS = {name: _TRANSFORMERS_WRAPPER for name in ("gpt2_padded", "gpt2", "bert_padded", "bert", "llama")}


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv+BN, a strided 1x1 projection when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(BasicBlock(width, width, 1), BasicBlock(width, 2 * width, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class DepthwiseSeparable(nn.Module):
    """MobileNet's block: depthwise 3x3 conv+BN+ReLU6, pointwise 1x1 conv+BN+ReLU6."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu6(self.bn2(self.pw(F.relu6(self.bn1(self.dw(x))))))


class TinyMobileNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(DepthwiseSeparable(8, 16, 1), DepthwiseSeparable(16, 32, 2))
        self.head = nn.Sequential(nn.Dropout(0.0), nn.Linear(32, classes))

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _randomize_batchnorm(model):
    """Fresh BatchNorm has mean 0 / var 1 / weight 1 / bias 0, which would hide eval-mode bugs."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


def resnet(size=16):
    torch.manual_seed(0)
    return _randomize_batchnorm(TinyResNet()), (torch.randn(2, 3, size, size),)


def mobilenet(size=16):
    torch.manual_seed(0)
    return _randomize_batchnorm(TinyMobileNet()), (torch.randn(2, 3, size, size),)


def mlp(batch=4):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Dropout(0.0), nn.Linear(64, 64), nn.LayerNorm(64),
                          nn.ReLU(), nn.Linear(64, 10), nn.LogSoftmax(dim=-1))
    return model, (torch.randn(batch, 32),)


def transformer_encoder_layer(seq=8):
    torch.manual_seed(0)
    model = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True, norm_first=False)
    return model, (torch.randn(2, seq, 64),)


def _hf_ids(vocab, seq):
    return torch.randint(0, vocab, (2, seq))


def gpt2(seq=8):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=128, n_positions=32, bos_token_id=0,
                        eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2Model(config), (_hf_ids(128, seq),)


def bert(seq=8):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                        vocab_size=128, max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertModel(config), (_hf_ids(128, seq),)


def llama(seq=8):
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    config = LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=128, vocab_size=128, max_position_embeddings=32, bos_token_id=0,
                         eos_token_id=0)
    return LlamaModel(config), (_hf_ids(128, seq),)


def channels_last(build):
    """The same model and inputs in channels-last memory format (eager keeps it through the net)."""

    def built(**kwargs):
        model, (x,) = build(**kwargs)
        return model.to(memory_format=torch.channels_last), (x.to(memory_format=torch.channels_last),)

    built.__name__ = f"{build.__name__}_channels_last"
    return built


resnet_channels_last = channels_last(resnet)
mobilenet_channels_last = channels_last(mobilenet)


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, d))


class GPTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d), nn.Dropout(0.0))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class MiniGPT(nn.Module):
    """A hand-written GPT (nanoGPT's shape): token + position embeddings, pre-norm blocks with
    causal scaled_dot_product_attention, a final LayerNorm and a weight-tied LM head."""

    def __init__(self, vocab=128, d=64, heads=4, layers=2, max_seq=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_seq, d)
        self.blocks = nn.ModuleList(GPTBlock(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def mini_gpt(seq=8):
    torch.manual_seed(0)
    return MiniGPT(), (torch.randint(0, 128, (2, seq)),)


class PaddedBatch(nn.Module):
    """A transformers encoder/decoder called with an attention mask (right-padded for BERT with
    token types, left-padded for GPT-2), returning its last hidden state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, mask, *extra):
        kwargs = {"token_type_ids": extra[0]} if extra else {}
        return self.model(ids, attention_mask=mask, **kwargs).last_hidden_state


def bert_padded(seq=9):
    model, (ids,) = bert(seq)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    token_types = torch.zeros_like(ids)
    token_types[:, seq // 2:] = 1
    return PaddedBatch(model), (ids, mask, token_types)


def gpt2_padded(seq=9):
    model, (ids,) = gpt2(seq)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    return PaddedBatch(model), (ids, mask)


def flat_tensors(value):
    """The tensors of a model output: tensors, tuples/lists/dicts and transformers' ModelOutput."""
    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat_tensors(v)]
    return []
