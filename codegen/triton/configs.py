"""Launch configurations: which kernel form, block sizes, warps and stages, from the sizes alone.

The heuristic (also in docs/architecture.md, Stage 4):

* Pointwise kernels are 1-D over the flattened outer range. XBLOCK is the element count rounded
  up to a power of two, at most 1024 (and a quarter of that as the alternative when it is at
  least 512); num_warps = XBLOCK / 128 (1..8), num_stages = 1 (no loop to pipeline).
* Reductions are 2-D tiles of XBLOCK rows x RBLOCK lanes. A row whose power-of-two length is at
  most PERSISTENT_RBLOCK_MAX is *persistent*: RBLOCK covers the whole row, the row is loaded
  once and every loop group reuses it. XBLOCK fills a tile of TILE_ELEMENTS lanes (capped by the
  row count), with a quarter of that as the alternative; num_warps = tile / 512 (2..8).
* Longer rows are *looped*: RBLOCK lanes walk the row in steps (LOOPED_RBLOCK first, then wider
  and narrower steps, and a many-rows-narrow-steps tile for rows that are contiguous across x);
  num_stages = 2 lets the GPU prefetch the next step.

The first candidate is the heuristic's pick, and the one used under Triton's interpreter and
whenever autotuning is off; on a GPU the launcher times every candidate once per kernel and
sizes and caches the winner on disk (autotune.py). Candidates are few (2-4) because each one
is a separate GPU compile on the first call.
"""
from __future__ import annotations

from dataclasses import dataclass

from kiln.prims.symbolic import is_symbolic, size_hint

PERSISTENT_RBLOCK_MAX = 4096  # longest (power-of-two) row kept whole in one block
LOOPED_RBLOCK = 1024  # step of a looped reduction
TILE_ELEMENTS = 4096  # lanes of a persistent tile (register budget of one program)
INT32_LIMIT = 2**31  # index math switches to int64 when an element index can reach this


@dataclass(frozen=True)
class LaunchConfig:
    XBLOCK: int
    RBLOCK: int | None = None  # None: pointwise kernel
    num_warps: int = 4
    num_stages: int = 1

    def kwargs(self) -> dict:
        blocks = {"XBLOCK": self.XBLOCK} if self.RBLOCK is None else {"XBLOCK": self.XBLOCK, "RBLOCK": self.RBLOCK}
        return {**blocks, "num_warps": self.num_warps, "num_stages": self.num_stages}

    def grid(self, xnumel: int) -> tuple[int]:
        return (-(-xnumel // self.XBLOCK),)

    def __repr__(self):
        return ", ".join(f"{k}={v}" for k, v in self.kwargs().items())


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def _clamp(v, lo, hi):
    return max(lo, min(hi, v))


def is_persistent(kernel) -> bool:
    """A reduction kernel whose rows fit one block: no r loop, each row loaded once (never a row
    of symbolic length: no block is known to cover it)."""
    n = numel(kernel.inner)
    return bool(kernel.inner) and not is_symbolic(n) and next_pow2(n) <= PERSISTENT_RBLOCK_MAX


def candidate_configs(kernel) -> list[LaunchConfig]:
    """The heuristic's pick first, then a few alternatives for autotuning (no duplicates)."""
    xnumel = max(size_hint(numel(kernel.outer)), 1)  # blocks stay >= 1 even for empty launches
    xcap = next_pow2(xnumel)
    if not kernel.inner:
        first = min(1024, max(xcap, 1))
        blocks = [first] + ([first // 4] if first >= 512 else [])
        out = [LaunchConfig(b, None, _clamp(b // 128, 1, 8), 1) for b in blocks]
    elif is_persistent(kernel):
        rblock = next_pow2(numel(kernel.inner))
        xblock = _clamp(TILE_ELEMENTS // rblock, 1, xcap)
        out = [LaunchConfig(x, rblock, _clamp(x * rblock // 512, 2, 8), 1) for x in (xblock, max(1, xblock // 4))]
    else:
        rcap = next_pow2(size_hint(numel(kernel.inner)))  # blocks: any size is right, the example's is best
        out = [LaunchConfig(min(x, xcap), min(r, rcap), w, 2)
               for x, r, w in ((1, LOOPED_RBLOCK, 4), (1, 2 * LOOPED_RBLOCK, 8), (4, LOOPED_RBLOCK // 2, 4),
                               (64, 64, 4))]
    return list(dict.fromkeys(out))
