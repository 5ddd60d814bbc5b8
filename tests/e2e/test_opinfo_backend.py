"""OpInfo ops in every dtype through the real back end (`kiln.compile_fx`, fallbacks included),
compared with eager (tests/kiln_backend_opinfo.py; the table: `python tests/backend_coverage.py`).

CI runs a deterministic sample of the (op, dtype) pairs (those whose name hashes to 0 mod SAMPLE_EVERY,
spread over ops and dtypes) plus the pairs of bugs this sweep found, each on its first samples, in a
worker process. No pair may be WRONG, CRASH, DEAD or ERROR; a whole graph may run eagerly only where
KNOWN_REFUSED says why. `KILN_FULL=1` runs every pair on every sample."""
import zlib

import pytest

import backend_coverage as coverage

SAMPLE_EVERY = 50
SAMPLES = 3
# bugs the sweep found, fixed: each pair was WRONG or refused whole before
REGRESSIONS = [
    "_softmax_backward_data|float16",       # computed in float16, rounding each step (7 ulps off)
    "_softmax_backward_data|bfloat16",
    "nn.functional.batch_norm|float16",     # saved mean/rstd float32 where eager's (CPU) are float16
    "native_batch_norm|bfloat16",
    "_native_batch_norm_legit|float16",     # eval mode: new running stats not in torch's meta dtype
    "nn.functional.instance_norm|bfloat16",  # training: float32 running stats written back without a cast
    "nn.functional.linear|bfloat16",        # 16-bit GEMM + bias rounded twice: 0.0078 off where they cancel
    "baddbmm|float16",
    "addr|bfloat16",
    "lerp|float16",                         # a Scalar weight rounded to float16 (0.4 -> 0.39990): 1 ulp off
    "resize_|float32",                      # refused whole: resize_ within the tensor's elements is a view chain
    "resize_as_|int64",
    "tensor_split|bool",                    # refused whole: tensor indices read while tracing (now a split)
    "normal.in_place|float16",              # refused whole: normal_'s functional twin is normal_functional
    "stft|complex64",                       # refused whole: as_strided of a complex op result (now on its pair)
    "diff|complex64",                       # refused whole: a complex output copied from an input (now its pair)
    "fft.hfft2|complex64",                  # refused whole: a pair copied into eager's layout by a complex kernel
]
# pair -> why its graph still runs eagerly where eager does not raise (docs/refusals.md)
KNOWN_REFUSED = {}


def _sample() -> list[str]:
    every = coverage.pairs(set(), coverage.ALL_DTYPES.split(","))
    return [p for p in every if zlib.crc32(p.encode()) % SAMPLE_EVERY == 0 or p in REGRESSIONS]


def _check(results, known):
    bad = [coverage.row_text(r) for r in results if r["status"] in coverage.FAILURES]
    refused = {r["id"]: r for r in results if r["status"] == "refused"}
    new = [coverage.row_text(r) for p, r in refused.items() if p not in known]
    fixed = [f"{p} compiles now: delete it from KNOWN_REFUSED" for p in known if p not in refused
             and any(r["id"] == p for r in results)]
    assert not bad and not new and not fixed, "\n".join(bad + new + fixed)


def test_regressions_are_in_the_sample():
    sample = _sample()
    assert all(p in sample for p in REGRESSIONS) and len(sample) > 80
    assert len({p.split("|")[1] for p in sample}) == 9  # every dtype


def test_opinfo_sample_through_the_back_end():
    results = coverage.run(_sample(), "cpp", SAMPLES, jobs=1, timeout=300)
    _check(results, KNOWN_REFUSED)


@pytest.mark.slow
def test_opinfo_every_pair_through_the_back_end():
    every = coverage.pairs(set(), coverage.ALL_DTYPES.split(","))
    results = coverage.run(every, "cpp", None, jobs=2, timeout=600)
    bad = [coverage.row_text(r) for r in results if r["status"] in coverage.FAILURES]
    assert not bad, "\n".join(bad)
