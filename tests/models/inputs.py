"""Deterministic inputs for a model, by the names of its forward's parameters.

`candidates(model)` gives input dicts to try in order; the sweep keeps the first that runs eagerly.
Each starts from the model's `main_input_name` (text ids, pixel_values, input_features, ...) in one
or a few shapes the config suggests, plus what such a model needs with it (decoder ids for an
encoder-decoder, time features for a time-series model); later candidates add the other
modalities the forward accepts (a CLIP-like model wants text and image together).
"""
from __future__ import annotations

import inspect
import itertools

import torch

BATCH, SEQ = 2, 8
AUDIO_SAMPLES = 4000
MAX_CANDIDATES = 12
_SUBCONFIGS = ("vision_config", "text_config", "audio_config", "encoder_config", "encoder", "decoder",
               "backbone_config", "speech_config", "vision_encoder_config", "t2u_config")


def find(config, *names, default=None):
    """The first of `names` set on the config, or on one of its sub-configs."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    for sub in _SUBCONFIGS:
        inner = getattr(config, sub, None)
        if inner is not None and hasattr(inner, "to_dict"):
            value = find(inner, *names)
            if value is not None:
                return value
    return default


def _generator(salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(1234 + salt)


def token_ids(config, shape, salt=0) -> torch.Tensor:
    """Ids in [3, min(vocab, 128)): past the usual pad/bos/eos ids, below multimodal placeholder ids."""
    vocab = find(config, "vocab_size", default=128)
    return torch.randint(3, max(4, min(vocab, 128)), shape, generator=_generator(salt))


def _floats(shape, salt=0) -> torch.Tensor:
    return torch.randn(shape, generator=_generator(salt))


def _size2(value):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value[-2:]) if len(value) >= 2 else (int(value[0]),) * 2
    if isinstance(value, dict):
        h = value.get("height") or value.get("shortest_edge")
        w = value.get("width") or h
        return (int(h), int(w)) if h else None
    return (int(value), int(value)) if value else None


def _pixels(config, name):
    channels = find(config, "num_channels", "in_channels", "image_channels", default=3)
    sizes = [_size2(find(config, "image_size", "img_size", "input_size"))] + [(224, 224), (64, 64)]
    sizes = list(dict.fromkeys(s for s in sizes if s))
    frames = find(config, "num_frames", "frames_per_clip")
    video = name == "pixel_values_videos" or frames is not None
    return [_floats((BATCH, frames or 4, channels, *s) if video else (BATCH, channels, *s), 1) for s in sizes]


def _features(config):
    out = []
    mels = find(config, "num_mel_bins")
    positions = find(config, "max_source_positions")
    if mels and positions:
        out.append(_floats((BATCH, mels, 2 * positions), 2))
    feat = find(config, "input_feat_per_channel")
    if feat:
        feat *= find(config, "input_channels", default=1)
    feat = feat or find(config, "feature_size", "num_mel_bins", "n_mels", default=80)
    out += [_floats((BATCH, 64, feat), 2), _floats((BATCH, feat, 64), 2)]
    return out


def _time_series(config):
    """past_values and the time-feature companions of a time-series forward."""
    context = find(config, "context_length", default=32)
    lags = find(config, "lags_sequence", default=[0])
    length = context + max(lags)
    channels = find(config, "num_input_channels", "input_size", default=1)
    shape = (BATCH, length) if channels == 1 and find(config, "num_input_channels") is None else (BATCH, length, channels)
    prediction = find(config, "prediction_length", default=8)
    times = find(config, "num_time_features", default=0)
    values = {"past_values": _floats(shape, 3), "past_observed_mask": torch.ones(shape, dtype=torch.bool)}
    if times:
        values["past_time_features"] = _floats((BATCH, length, times), 4)
        values["future_time_features"] = _floats((BATCH, prediction, times), 5)
        values["future_values"] = _floats((BATCH, prediction) + shape[2:], 6)
    return values


def _main_candidates(config, name):
    """[{name: tensor, ...}] for the main input in its likely shapes."""
    if name == "input_ids":
        return [{name: token_ids(config, (BATCH, SEQ))}, {name: token_ids(config, (BATCH, 64))}]
    if name in ("pixel_values", "pixel_values_videos"):
        return [{name: x} for x in _pixels(config, name)]
    if name == "input_values":
        return [{name: _floats((BATCH, AUDIO_SAMPLES), 7)}, {name: _floats((BATCH, 1, AUDIO_SAMPLES), 7)}]
    if name == "input_features":
        return [{name: x} for x in _features(config)]
    if name == "past_values":
        return [_time_series(config)]
    if name == "inputs_embeds":
        return [{name: _floats((BATCH, SEQ, find(config, "hidden_size", "d_model", default=64)), 8)}]
    return []


def _companions(config, params, main: dict) -> dict:
    """What an encoder-decoder needs besides its encoder input."""
    extra = {}
    if "decoder_input_ids" in params and "input_ids" not in main or (
            "decoder_input_ids" in params and getattr(config, "is_encoder_decoder", False)):
        dec = find(config, "decoder_vocab_size", "vocab_size", default=128)
        extra["decoder_input_ids"] = torch.randint(3, max(4, min(dec, 128)), (BATCH, SEQ), generator=_generator(9))
    return extra


def _others(config, params, main: dict) -> list[dict]:
    """Other modalities the forward accepts, each a dict of inputs to add."""
    out = []
    for name in ("input_ids", "pixel_values", "input_features", "input_values"):
        if name in params and name not in main:
            for cand in _main_candidates(config, name)[:1]:
                out.append(cand)
    return out


def candidates(model) -> list[dict]:
    config = model.config
    params = set(inspect.signature(model.forward).parameters)
    name = getattr(model, "main_input_name", "input_ids")
    mains = _main_candidates(config, name) or [{}]
    result = []
    for main in mains:
        base = {**main, **_companions(config, params, main)}
        result.append(base)
        others = _others(config, params, main)
        for k in range(1, len(others) + 1):
            for combo in itertools.combinations(others, k):
                merged = dict(base)
                for part in combo:
                    merged.update(part)
                merged.update(_companions(config, params, merged))
                result.append(merged)
    seen, unique = set(), []
    for cand in result:
        key = tuple(sorted((k, tuple(v.shape)) for k, v in cand.items()))
        if key not in seen:
            seen.add(key)
            unique.append(cand)
    return unique[:MAX_CANDIDATES]


def describe(inputs: dict) -> dict:
    return {k: f"{str(v.dtype).replace('torch.', '')}{list(v.shape)}" for k, v in inputs.items()}
