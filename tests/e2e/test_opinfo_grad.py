"""OpInfo gradients through the real back end (tests/kiln_grad_opinfo.py; the table:
`python tests/gradient_coverage.py`): forward and `torch.autograd.grad` compiled by Kiln vs eager.

CI runs a deterministic sample of the ops with float32 backward support (those whose name hashes to 0
mod SAMPLE_EVERY) plus the ops of bugs this sweep found, each on its first samples, in a worker
process. No op may be WRONG, CRASH, DEAD or ERROR; a graph may run eagerly only where KNOWN_REFUSED
says why. `KILN_FULL=1` runs every op on every sample."""
import zlib

import pytest

import backend_coverage
import gradient_coverage as coverage

SAMPLE_EVERY = 20
SAMPLES = 3
# "op|float32" of bugs the sweep found, fixed
REGRESSIONS = [
    "nn.functional.logsigmoid|float32",  # log_sigmoid_forward's buffer was zeros: eager's backward read it (WRONG)
    "nn.functional.multilabel_soft_margin_loss|float32",  # the same, through logsigmoid
]
# bugs on later samples, run on every sample: each was refused with an internal error
FULL_REGRESSIONS = [
    "log_softmax.with_dtype|float32",  # empty input: a fallback's meta on device "meta", then _to_copy recursed
    "native_layer_norm|float32",       # empty input: a fallback with an undefined (None) gradient output
]
# backward ops autograd emits, decomposed to prims (prims/decomp/backward.py): these compile with no
# op-level fallback (an ATen backward kernel run as is)
DECOMPOSED_BACKWARD = ["nn.functional.gelu", "tanh", "sigmoid", "nn.functional.silu", "nn.functional.logsigmoid",
                       "log_softmax", "nn.functional.mse_loss", "nn.functional.relu", "nn.functional.leaky_relu",
                       "nn.functional.hardsigmoid"]
KNOWN_REFUSED: dict[str, str] = {}  # "op|float32" -> why its graph still runs eagerly


def _sample() -> list[str]:
    return [p for p in coverage.pairs(set()) if zlib.crc32(p.encode()) % SAMPLE_EVERY == 0 or p in REGRESSIONS]


def _check(results, known):
    bad = [backend_coverage.row_text(r) for r in results if r["status"] in coverage.FAILURES]
    refused = {r["id"]: r for r in results if r["status"] == "refused"}
    new = [backend_coverage.row_text(r) for p, r in refused.items() if p not in known]
    fixed = [f"{p} compiles now: delete it from KNOWN_REFUSED" for p in known if p not in refused
             and any(r["id"] == p for r in results)]
    assert not bad and not new and not fixed, "\n".join(bad + new + fixed)


def test_sample_is_spread_and_holds_the_regressions():
    sample = _sample()
    assert all(p in sample for p in REGRESSIONS) and len(sample) >= 20
    assert len(coverage.pairs(set())) > 400  # every op with float32 backward support


def test_opinfo_grad_sample():
    results = coverage.run(_sample(), "cpp", SAMPLES, jobs=1, timeout=300)
    assert any(r["status"] in ("compiled", "fallback") for r in results)
    _check(results, KNOWN_REFUSED)


@pytest.mark.slow
def test_opinfo_grad_every_op():
    results = coverage.run(coverage.pairs(set()), "cpp", None, jobs=2, timeout=600)
    bad = [backend_coverage.row_text(r) for r in results if r["status"] in coverage.FAILURES]
    assert not bad, "\n".join(bad)


def test_backward_ops_decompose():
    results = coverage.run(coverage.pairs(set(DECOMPOSED_BACKWARD)), "cpp", SAMPLES, jobs=1, timeout=300)
    assert {r["op"].split(".with_dtype")[0] for r in results} == set(DECOMPOSED_BACKWARD)
    assert all(r["status"] == "compiled" for r in results), "\n".join(map(backend_coverage.row_text, results))


def test_regressions_on_every_sample():
    results = coverage.run(FULL_REGRESSIONS, "cpp", None, jobs=1, timeout=300)
    assert all(r["status"] in ("compiled", "fallback") for r in results), "\n".join(map(backend_coverage.row_text, results))
