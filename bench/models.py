"""Whole-model benchmark: eager vs torch.compile (inductor) vs Kiln (both entry points), inference
and training, on transformers models built from configs and convnets written here.

Usage (from the repository root, in the virtualenv):

    python bench/models.py                        # every model: inference, then the training steps
    python bench/models.py --quick                # tiny sizes only, 2 rounds
    python bench/models.py --only gpt2 --only resnet18
    python bench/models.py --profile gpt2         # Kiln's per-kernel profile of one model (KILN_PROFILE)
    python bench/models.py --markdown             # tables only, for bench/RESULTS.md

What is measured
  * Inference: `model(*inputs)` under torch.no_grad(), model in eval mode. Training: forward +
    loss + backward + AdamW step + zero_grad (the loss inside the compiled module).
      eager        the plain module
      inductor     torch.compile(module)
      kiln         kiln.compile(module)                  (Kiln's capture + Kiln's back end)
      dynamo+kiln  torch.compile(module, backend="kiln")
    KILN_STRICT=1: a graph Kiln runs eagerly fails the row (FAILED, with the reason), so a fallback
    never passes for Kiln's speed.
  * First call: compile + one call, in this process, on fresh Kiln and Inductor cache folders made
    for the run (cold for each model's own kernels; Python-level caches of earlier models stay warm).
  * Steady state: methods interleaved round by round; each round the median of N calls; ratios are
    medians of the per-round ratios (the machine is noisy: bench/RESULTS.md).
  * Geomeans over the inference models of speedup vs eager and of Kiln vs inductor.

No timing assertions live here or in the tests.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile

os.environ.setdefault("KILN_STRICT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if __name__ == "__main__" and "--keep-caches" not in sys.argv:  # cold first calls: fresh cache folders (not when imported)
    os.environ["KILN_CACHE_DIR"] = tempfile.mkdtemp(prefix="kiln-models-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-models-")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cpu_bench import _short, geomean, machine_line, preimport  # noqa: E402
from training import first_step, time_steps  # noqa: E402  (bench/training.py: the same timing)

METHODS = ("eager", "inductor", "kiln", "dynamo+kiln")


# --------------------------------------------------------------------------------------------
# Convnets (torchvision does not import beside the CPU torch: written here)
# --------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
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


class ResNet18(nn.Module):
    def __init__(self, width=64, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], width
        for i, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            layers += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project (ReLU6), residual when shapes match;
    with `se`/SiLU it is EfficientNet's MBConv."""

    def __init__(self, cin, cout, stride, expand, se=False, act=nn.ReLU6):
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act()) \
            if expand != 1 else nn.Identity()
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), act())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, max(1, cin // 4), 1), nn.SiLU(),
                                nn.Conv2d(max(1, cin // 4), hidden, 1), nn.Sigmoid()) if se else None
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        if self.se is not None:
            h = h * self.se(h)
        h = self.project(h)
        return x + h if self.residual else h


class MobileNetLike(nn.Module):
    # (expand, channels, repeats, stride): MobileNetV2's table, trimmed
    TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 2, 1), (6, 160, 2, 2)]

    def __init__(self, se=False, act=nn.ReLU6, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), act())
        blocks, cin = [], 32
        for expand, cout, repeats, stride in self.TABLE:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, se, act))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, 640, 1, bias=False), nn.BatchNorm2d(640), act())
        self.fc = nn.Linear(640, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1), 1))


def _randomize_batchnorm(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def _image(batch, size):
    return (torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)),)


# --------------------------------------------------------------------------------------------
# Transformers models from configs
# --------------------------------------------------------------------------------------------

def _ids(vocab, batch, seq):
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0))


def _hf(kind, hidden, layers, seq, batch=1):
    import transformers as T

    heads = max(2, hidden // 64)
    common = dict(vocab_size=1000)
    if kind == "gpt2":
        model = T.GPT2Model(T.GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_positions=max(seq, 64),
                                         **common))
    elif kind == "bert":
        model = T.BertModel(T.BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                         intermediate_size=4 * hidden, **common))
    elif kind == "distilbert":
        model = T.DistilBertModel(T.DistilBertConfig(dim=hidden, n_layers=layers, n_heads=heads,
                                                     hidden_dim=4 * hidden, **common))
    elif kind == "llama":
        model = T.LlamaModel(T.LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                           num_key_value_heads=heads, intermediate_size=(8 * hidden) // 3, **common))
    elif kind == "t5":
        model = T.T5EncoderModel(T.T5Config(d_model=hidden, num_layers=layers, num_heads=heads, d_kv=64,
                                            d_ff=4 * hidden, **common))
    elif kind == "vit":
        model = T.ViTModel(T.ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                       intermediate_size=4 * hidden, image_size=64, patch_size=8))
        return HiddenState(model), _image(batch, 64)
    else:
        raise ValueError(kind)
    return HiddenState(model), (_ids(1000, batch, seq),)


class HiddenState(nn.Module):
    """A transformers model returning its last hidden state (a tensor, for every method alike)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).last_hidden_state


def _seeded(build):
    def built(*args):
        torch.manual_seed(0)
        return build(*args)
    return built


# name -> (quick builder, full builder, description of the full size)
MODELS = {
    "gpt2": (lambda: _hf("gpt2", 64, 2, 32), lambda: _hf("gpt2", 768, 2, 128), "GPT2Model, 2 layers, hidden 768, seq 128"),
    "bert": (lambda: _hf("bert", 64, 2, 32), lambda: _hf("bert", 768, 2, 128), "BertModel, 2 layers, hidden 768, seq 128"),
    "distilbert": (lambda: _hf("distilbert", 64, 2, 32), lambda: _hf("distilbert", 768, 2, 128),
                   "DistilBertModel, 2 layers, hidden 768, seq 128"),
    "llama": (lambda: _hf("llama", 64, 2, 32), lambda: _hf("llama", 768, 2, 128), "LlamaModel, 2 layers, hidden 768, seq 128"),
    "t5_encoder": (lambda: _hf("t5", 64, 2, 32), lambda: _hf("t5", 512, 2, 128), "T5EncoderModel, 2 layers, d_model 512, seq 128"),
    "vit": (lambda: _hf("vit", 64, 2, 0), lambda: _hf("vit", 384, 4, 0, 4), "ViTModel, 4 layers, hidden 384, 64x64 images, batch 4"),
    "gpt2_tiny": (lambda: _hf("gpt2", 64, 2, 32), lambda: _hf("gpt2", 64, 2, 32, 4), "GPT2Model, 2 layers, hidden 64, seq 32, batch 4"),
    "resnet18": (lambda: (_randomize_batchnorm(ResNet18(width=16, classes=10)), _image(2, 32)),
                 lambda: (_randomize_batchnorm(ResNet18()), _image(1, 112)), "ResNet-18, 112x112, batch 1"),
    "mobilenet_v2": (lambda: (_randomize_batchnorm(MobileNetLike(classes=10)), _image(2, 32)),
                     lambda: (_randomize_batchnorm(MobileNetLike()), _image(1, 112)),
                     "MobileNetV2-style (ReLU6), 112x112, batch 1"),
    "efficientnet": (lambda: (_randomize_batchnorm(MobileNetLike(se=True, act=nn.SiLU, classes=10)), _image(2, 32)),
                     lambda: (_randomize_batchnorm(MobileNetLike(se=True, act=nn.SiLU)), _image(1, 112)),
                     "EfficientNet-style (MBConv, squeeze-excite, SiLU), 112x112, batch 1"),
}
TRAINING = ("gpt2_tiny", "resnet18", "llama")  # training steps (quick sizes: the full ones take minutes)


def make(name, quick):
    quick_build, full_build, _ = MODELS[name]
    return _seeded(quick_build if quick else full_build)()


# --------------------------------------------------------------------------------------------
# Methods and measurements
# --------------------------------------------------------------------------------------------

def compile_module(method, module):
    if method == "eager":
        return module
    if method == "inductor":
        return torch.compile(module)
    if method == "kiln":
        import kiln

        return kiln.compile(module)
    return torch.compile(module, backend="kiln")


class WithLoss(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).float().square().mean()


class Runner:
    def __init__(self, method, module, inputs, training):
        self.module = copy.deepcopy(module)
        self.training = training
        if training:
            self.module = WithLoss(self.module).train()
            self.opt = torch.optim.AdamW(self.module.parameters(), lr=1e-4)
        else:
            self.module.eval()
        self.compiled = compile_module(method, self.module)
        self.inputs = inputs

    def step(self):
        if not self.training:
            with torch.no_grad():
                return self.compiled(*self.inputs)
        loss = self.compiled(*self.inputs)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()


def bench_model(name, quick, rounds, training, log):
    import kiln

    module, inputs = make(name, quick)
    row = {"name": name, "training": training, "first": {}, "times": {}, "failed": {}, "err": {}}
    runners, reference = {}, None
    torch._dynamo.reset()  # once per model: a reset between methods would make the compiled ones recompile
    kiln.reset()
    for method in METHODS:
        try:
            runner = Runner(method, module, inputs, training)
            out, row["first"][method] = first_step(runner)
            if reference is None:
                reference = out
            else:
                row["err"][method] = (out.float() - reference.float()).abs().max().item()
            runner.step()
            runners[method] = runner
        except Exception as e:  # noqa: BLE001  (a failing method is a result, not a crash)
            row["failed"][method] = _short(e, 160).replace("BackendCompilerFailed: backend='kiln' raised: ", "")
            log(f"  {name}/{method}: FAILED: {_short(e, 300)}")
    probe = time_steps(runners["eager"], 1)
    steps = max(1, min(20, int((0.05 if quick else 0.4) / max(probe, 1e-6))))
    samples = {m: [] for m in runners}
    for _ in range(rounds):
        for m, r in runners.items():
            samples[m].append(time_steps(r, steps))
    row["times"] = {m: statistics.median(s) for m, s in samples.items()}
    row["ratios"] = {(m, base): statistics.median(b / k for b, k in zip(samples[base], samples[m]))
                     for m in METHODS[1:] if m in samples for base in ("eager", "inductor")
                     if base in samples and base != m}
    row["steps"] = steps
    return row


def table(rows, title) -> str:
    lines = [f"### {title}", "",
             "| model | eager ms | inductor ms | kiln ms | dynamo+kiln ms | inductor vs eager | kiln vs eager "
             "| kiln vs inductor | dynamo+kiln vs inductor | first call s (inductor / kiln / dynamo+kiln) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["times"]
        ms = [f"{t[m] * 1e3:.2f}" if m in t else "FAILED" for m in METHODS]
        ratio = lambda m, b: f"{r['ratios'][(m, b)]:.2f}x" if (m, b) in r["ratios"] else "-"  # noqa: E731
        first = " / ".join(f"{r['first'][m]:.2f}" if m in r["first"] else "-" for m in METHODS[1:])
        lines.append(f"| {r['name']} | " + " | ".join(ms) + f" | {ratio('inductor', 'eager')} | {ratio('kiln', 'eager')}"
                     f" | {ratio('kiln', 'inductor')} | {ratio('dynamo+kiln', 'inductor')} | {first} |")
    for key, label in ((("inductor", "eager"), "inductor vs eager"), (("kiln", "eager"), "kiln vs eager"),
                       (("kiln", "inductor"), "kiln vs inductor"), (("dynamo+kiln", "eager"), "dynamo+kiln vs eager"),
                       (("dynamo+kiln", "inductor"), "dynamo+kiln vs inductor")):
        values = [r["ratios"][key] for r in rows if key in r["ratios"]]
        if values:
            lines.append(f"\ngeomean {label}: {geomean(values):.2f}x over {len(values)} model(s)")
    for r in rows:
        for m, why in r["failed"].items():
            lines.append(f"\n{r['name']}/{m} FAILED: {why}")
    return "\n".join(lines)


def profile_one(name, quick):
    import kiln

    kiln.config.profile = True
    module, inputs = make(name, quick)
    runner = Runner("kiln", module, inputs, training=False)
    for _ in range(20):
        runner.step()
    print(kiln.profile_report(15))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--profile", choices=sorted(MODELS))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--keep-caches", action="store_true", help="use the usual cache folders (warm first calls)")
    args = parser.parse_args(argv)
    if args.profile:
        return profile_one(args.profile, args.quick)
    preimport()
    rounds = args.rounds or (2 if args.quick else 5)
    log = (lambda s: None) if args.markdown else (lambda s: print(s, file=sys.stderr, flush=True))
    names = args.only or [n for n in MODELS if n != "gpt2_tiny"]
    inference = []
    for name in names:
        log(f"inference: {name}")
        inference.append(bench_model(name, args.quick, rounds, False, log))
    training = []
    if not args.no_training:
        for name in (args.only or TRAINING):
            if name in TRAINING:
                log(f"training: {name}")
                training.append(bench_model(name, True, rounds, True, log))
    print(f"bench/models.py ({'quick' if args.quick else 'full'} sizes, {rounds} rounds): {machine_line()}\n")
    print("\n".join(f"- {n}: {MODELS[n][2] if not args.quick else 'tiny'}" for n in names) + "\n")
    print(table(inference, "Inference (torch.no_grad, eval mode)"))
    if training:
        print()
        print(table(training, "Training step (forward + backward + AdamW; quick sizes)"))


if __name__ == "__main__":
    main()
