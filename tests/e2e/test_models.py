"""Whole models against eager, through both entry points: `capture.compile(model)` and
`torch.compile(model, backend="kiln")`. Each run compares outputs, the inputs after the call and the
module's parameters and buffers (train-mode BatchNorm updates its running stats) with eager on deep
copies, twice (the second call, with new values, must reuse the compiled graph). Kiln must really
compile: no Kiln warning, at least one graph, no `kiln.fallback` op unless the model lists one.
The graph, kernel and fallback counts are printed (`pytest -s`) and kept in RESULTS for the report."""
import copy
import importlib
import warnings

import pytest
import torch

from kiln import capture
import kiln_models as models
from kiln.capture.exc import FallbackWarning
from kiln.backend import KilnCompileWarning
from kiln import config

compile_fx_module = importlib.import_module("kiln.backend")

ENTRY_POINTS = {
    "capture": lambda m: capture.compile(m),
    "torch": lambda m: torch.compile(m, backend="kiln"),
}
RESULTS = {}

CAPTURE_GAPS = models.CAPTURE_GAPS


def _assert_same(got, expected, what):
    got, expected = models.flat_tensors(got), models.flat_tensors(expected)
    assert len(got) == len(expected) and expected, (what, len(got), len(expected))
    for i, (g, e) in enumerate(zip(got, expected)):
        torch.testing.assert_close(g, e, msg=lambda m: f"{what}[{i}]: {m}")


def _new_values(x):
    """Second-call input of the same shape: fresh floats; ids and masks shuffled (values stay valid)."""
    if x.is_floating_point():
        return torch.randn_like(x)
    return x.flatten()[torch.randperm(x.numel())].view_as(x)


class Recorder:
    """Wraps inductor's compile_graph to keep every CompiledGraph the `kiln` backend builds."""

    def __init__(self, monkeypatch):
        self.graphs = []
        real = compile_fx_module.compile_graph

        def recording(gm, example_inputs, **kwargs):
            compiled = real(gm, example_inputs, **kwargs)
            self.graphs.append(compiled)
            return compiled

        monkeypatch.setattr(compile_fx_module, "compile_graph", recording)

    def fallback_ops(self):
        fallback = compile_fx_module.prims.PRIMS["fallback"]
        return sorted(str(n.args[0]) for g in self.graphs for n in g.prims_gm.graph.nodes
                      if n.op == "call_function" and n.target is fallback)


def run_model(build, entry, mode, monkeypatch, *, allowed_fallbacks=(), target=None, grad_off=torch.no_grad, name=None):
    if target is not None:
        monkeypatch.setattr(config, "target", target)
    torch._dynamo.reset()
    capture.reset()
    recorder = Recorder(monkeypatch)
    model, inputs = build()
    model.train(mode == "train")
    compiled_model = copy.deepcopy(model)
    compiled = ENTRY_POINTS[entry](compiled_model)
    for call in range(2):
        if call:
            torch.manual_seed(1)
            inputs = tuple(map(_new_values, inputs))
        eager_inputs, compiled_inputs = copy.deepcopy(inputs), copy.deepcopy(inputs)
        with grad_off(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expected = model(*eager_inputs)
            got = compiled(*compiled_inputs)
        kiln_warnings = [str(w.message) for w in caught if issubclass(w.category, (FallbackWarning, KilnCompileWarning))]
        assert not kiln_warnings, kiln_warnings
        _assert_same(got, expected, "output")
        _assert_same(compiled_inputs, eager_inputs, "input after the call")
        for (key, g), (_, e) in zip(compiled_model.state_dict().items(), model.state_dict().items()):
            torch.testing.assert_close(g, e, msg=lambda m: f"{key}: {m}")
        assert len(recorder.graphs) == 1, f"call {call}: {len(recorder.graphs)} graphs (the second call must hit the cache)"
    assert recorder.fallback_ops() == sorted(allowed_fallbacks)
    kernels = sum(len(g.kernels) for g in recorder.graphs)
    assert kernels > 0
    summary = f"{len(recorder.graphs)} graph(s), {kernels} kernel(s), {recorder.graphs[0].target}"
    name = name or build.__name__
    RESULTS[(name, entry, mode, target)] = summary
    print(f"\n{name} {mode} via {entry}: {summary}")
    return recorder


def _entries(name):
    marks = [pytest.mark.xfail(strict=True, reason=CAPTURE_GAPS[name])] if name in CAPTURE_GAPS else []
    return [pytest.param("capture", marks=marks), "torch"]


CONVNETS_AND_MLP = [models.resnet, models.mobilenet, models.resnet_channels_last, models.mobilenet_channels_last,
                    models.mlp, models.mini_gpt]


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("entry", ["capture", "torch"])
@pytest.mark.parametrize("build", CONVNETS_AND_MLP, ids=lambda b: b.__name__)
def test_convnets_mlp_and_mini_gpt(build, entry, mode, monkeypatch):
    run_model(build, entry, mode, monkeypatch)


@pytest.mark.parametrize("entry", _entries("transformer_encoder_layer"))
def test_transformer_encoder_layer_train_mode(entry, monkeypatch):
    # In train mode (dropout 0) the layer runs its Python path: attention, LayerNorm, feed-forward.
    run_model(models.transformer_encoder_layer, entry, "train", monkeypatch)


@pytest.mark.parametrize("entry", _entries("transformer_encoder_layer"))
def test_transformer_encoder_layer_eval_mode(entry, monkeypatch):
    # With the fast path off, eval mode runs the same Python path as train mode (next test: with it on).
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        run_model(models.transformer_encoder_layer, entry, "eval", monkeypatch)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_transformer_encoder_layer_fast_path_is_a_fallback_op(monkeypatch):
    # Eval under no_grad takes PyTorch's fused "fast path", one ATen op with no decomposition in Kiln:
    # it stays a kiln.fallback node (run by ATen inside the compiled graph), with eager's result.
    torch._dynamo.reset()
    recorder = Recorder(monkeypatch)
    model, (x,) = models.transformer_encoder_layer()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, backend="kiln")(x), model(x))
    assert recorder.fallback_ops() == ["aten._transformer_encoder_layer_fwd.default"]


@pytest.mark.parametrize("entry", ["capture", "torch"])
def test_inference_mode(entry, monkeypatch):
    run_model(models.resnet, entry, "eval", monkeypatch, grad_off=torch.inference_mode)


HF_MODELS = [models.gpt2, models.bert, models.llama, models.gpt2_padded, models.bert_padded]


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("build", HF_MODELS, ids=lambda b: b.__name__)
def test_transformers_models(build, mode, monkeypatch):
    run_model(build, "torch", mode, monkeypatch)


@pytest.mark.parametrize("build", [pytest.param(b, marks=pytest.mark.xfail(strict=True, reason=CAPTURE_GAPS[b.__name__]))
                                   for b in HF_MODELS], ids=lambda b: b.__name__)
def test_transformers_models_capture(build, monkeypatch):
    run_model(build, "capture", "eval", monkeypatch)


# Triton's interpreter is slow: small shapes, one model per family in the default run.
TRITON_MODELS = {
    "mlp": lambda: models.mlp(batch=2),
    "resnet": lambda: models.resnet(size=8),
    "gpt2": lambda: models.gpt2(seq=4),
    "mini_gpt": lambda: models.mini_gpt(seq=4),
    "resnet_channels_last": pytest.param(lambda: models.resnet_channels_last(size=8), marks=pytest.mark.slow),
    "mobilenet": pytest.param(lambda: models.mobilenet(size=8), marks=pytest.mark.slow),
    "bert": pytest.param(lambda: models.bert(seq=4), marks=pytest.mark.slow),
    "llama": pytest.param(lambda: models.llama(seq=4), marks=pytest.mark.slow),
}


@pytest.mark.parametrize("build", list(TRITON_MODELS.values()), ids=list(TRITON_MODELS))
def test_torch_compile_on_triton(build, request, monkeypatch):
    run_model(build, "torch", "eval", monkeypatch, target="triton", name=request.node.callspec.id)


@pytest.mark.parametrize("name", ["mlp", "mini_gpt"])
def test_capture_compile_on_triton(name, monkeypatch):
    run_model(TRITON_MODELS[name], "capture", "eval", monkeypatch, target="triton", name=name)
