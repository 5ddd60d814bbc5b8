"""Small configs: a model type's default config with its widths, depths, expert counts and vocabulary
cut down, keeping what the model needs to stay valid.

Widths (hidden sizes, heads' dims, FFN sizes, conv channels) are divided by the largest of 8, 4, 2
that divides them and leaves at least 16: ratios and divisibility (hidden = heads x head_dim, a
rotary fraction of the head) mostly survive. Depths go to 2 (per-stage depth lists to 1), and any
list as long as the old layer count (`layer_types`, per-layer windows) is cut to the new count.
Experts go to 4, experts per token to 2. Vocabularies go to 128, or just above the largest special
token id anywhere in the config (multimodal models keep image-token ids in range).

`tier`: "small" applies all of that; "shallow" only the depths and experts (for models whose
widths are tied together in ways the division breaks). The sweep tries "small" first.
"""
from __future__ import annotations

import copy
import re

TIERS = ("small", "shallow")

_WIDTH = re.compile(
    r"^(hidden_size|d_model|n_embd|embed_dim|dim|hidden_dim|intermediate_size|ffn_dim|encoder_ffn_dim|"
    r"decoder_ffn_dim|n_inner|d_ff|d_kv|d_inner|head_dim|qk_rope_head_dim|qk_nope_head_dim|qk_head_dim|v_head_dim|"
    r"kv_lora_rank|q_lora_rank|moe_intermediate_size|shared_expert_intermediate_size|projection_dim|"
    r"text_embed_dim|vision_embed_dim|decoder_hidden_size|decoder_intermediate_size|encoder_hidden_size|"
    r"word_embed_proj_dim|linear_key_head_dim|linear_value_head_dim|embedding_size|mlp_dim|"
    r"projector_hidden_size|mm_hidden_size|hidden_sizes|embed_dims|conv_dim|dims|hidden_dims|"
    r"encoder_hidden_dim|decoder_dim|mlp_hidden_size|expert_intermediate_size|d_state|state_size|"
    r"ssm_state_size|time_step_rank|num_channels_list|neck_hidden_sizes|fusion_hidden_size|"
    r"dense_intermediate_size|block_out_channels|output_hidden_size|pooler_output_size|xvector_output_dim|"
    r"codevector_dim|proj_codevector_dim|tdnn_dim|classifier_proj_size|audio_hidden_size|"
    r"vision_hidden_size|text_hidden_size|hidden_channels|intermediate_channels)$")
_DEPTH = re.compile(r"^(num_hidden_layers|n_layer|n_layers|num_layers|encoder_layers|decoder_layers|"
                    r"num_encoder_layers|num_decoder_layers|num_text_layers|num_vision_layers|num_blocks|"
                    r"text_num_hidden_layers|vision_num_hidden_layers|decoder_num_hidden_layers|"
                    r"encoder_num_hidden_layers|num_hidden_blocks)$")
_DEPTH_LIST = re.compile(r"^(depths|num_layers_per_stage|stage_depths|layers_per_stage|num_layers_list)$")
_EXPERTS = re.compile(r"^(num_experts|n_routed_experts|num_local_experts|moe_num_experts|num_routed_experts)$")
_PER_TOKEN = re.compile(r"^(num_experts_per_tok|moe_topk|moe_k|num_experts_per_token|top_k_experts)$")
_TOKEN_ID = re.compile(r"(token_id|token_index|_token)$")

DEPTH, EXPERTS, PER_TOKEN, VOCAB = 2, 4, 2, 128


def smaller(value: int) -> int:
    for f in (8, 4, 2):
        if value % f == 0 and value // f >= 16:
            return value // f
    return value


def max_token_id(d) -> int:
    """The largest special-token id anywhere in a config dict (ints under *_token_id and kin)."""
    best = -1
    if isinstance(d, dict):
        for k, v in d.items():
            if not isinstance(k, str):
                continue
            if isinstance(v, dict):
                best = max(best, max_token_id(v))
            elif _TOKEN_ID.search(k) and isinstance(v, int) and not isinstance(v, bool):
                best = max(best, v)
            elif _TOKEN_ID.search(k) and isinstance(v, (list, tuple)):
                best = max([best] + [x for x in v if isinstance(x, int) and not isinstance(x, bool)])
    return best


def shrink_dict(d: dict, tier: str = "small", vocab: int | None = None) -> dict:
    """A shrunk copy of a config's `to_dict()` (sub-config dicts included)."""
    assert tier in TIERS, tier
    d = copy.deepcopy(d)
    if vocab is None:
        vocab = max(VOCAB, max_token_id(d) + 1)
    return _shrink(d, tier, vocab)


def _shrink(d: dict, tier: str, vocab: int) -> dict:
    old_depths = {v for k, v in d.items() if _DEPTH.match(k) and _is_int(v) and v > DEPTH}
    for k, v in list(d.items()):
        if not isinstance(k, str):
            continue
        if isinstance(v, dict) and "model_type" in v:
            d[k] = _shrink(v, tier, vocab)
        elif _DEPTH.match(k) and _is_int(v):
            d[k] = min(v, DEPTH)
        elif _DEPTH_LIST.match(k) and _int_list(v):
            d[k] = [min(x, 1) for x in v]
        elif _EXPERTS.match(k) and _is_int(v):
            d[k] = min(v, EXPERTS)
        elif _PER_TOKEN.match(k) and _is_int(v):
            d[k] = min(v, PER_TOKEN)
        elif k in ("n_group", "topk_group") and _is_int(v):
            d[k] = 1
        elif tier == "small" and k == "vocab_size" and _is_int(v):
            d[k] = min(v, vocab)
        elif tier == "small" and _WIDTH.match(k):
            if _is_int(v):
                d[k] = smaller(v)
            elif _int_list(v):
                d[k] = type(v)(smaller(x) for x in v)
    for k, v in list(d.items()):  # per-layer lists follow the new depth
        if isinstance(v, (list, tuple)) and len(v) in old_depths and not _DEPTH_LIST.match(k):
            d[k] = type(v)(v[:DEPTH])
    return d


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(v) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(_is_int(x) for x in v)
