"""Resume each corpus function at every resumable offset (first and second arrival), from a
snapshot of the real frame there, and compare with the original call. Torch-free: run
in-process on 3.11 and in subprocesses on 3.12/3.13 (tests/capture/test_resume.py)."""
from __future__ import annotations

from kiln.capture.bytecode.errors import CannotResume
from kiln.capture.bytecode.resume import resume_code, resume_points

from . import probe
from .functions import CASES, FLAG


def outcome(run):
    """(result or exception description, FLAG after): what a run did, comparably."""
    FLAG[0] = False
    try:
        value = run()
        outcome = ("returned", value)
    except Exception as error:
        outcome = ("raised", type(error).__name__, str(error))
    return outcome, FLAG[0]


def check_case(name: str, hits=(1, 2)) -> dict:
    """Resume `name`'s function at every resumable offset; compare with the original run.
    Returns counts and a list of failure descriptions."""
    fn, make_args = CASES[name]
    args, kwargs = make_args()
    expected = outcome(lambda: (fn(*args, **kwargs), args, kwargs))
    checked, failures, unsupported = 0, [], []
    for offset in resume_points(fn.__code__):
        for hit in hits:
            args, kwargs = make_args()
            FLAG[0] = False
            snap = probe.snapshot(fn, offset, args, kwargs, hit=hit)
            if snap is None:
                continue
            try:
                resume = resume_code(fn.__code__, offset, snap.kinds(), snap.locals)
            except CannotResume as error:
                unsupported.append(f"{offset}: {error.reason}")
                continue
            function = resume.make_function(fn.__globals__, tuple(snap.cells) + (fn.__closure__ or ()))
            call_args = [snap.locals[local] for local in resume.leading] + snap.stack_args() + \
                [snap.locals[local] for local in resume.local_names]
            got = outcome(lambda: (function(*call_args), snap.args, snap.kwargs))
            checked += 1
            if repr(got) != repr(expected):
                failures.append(f"{name} at offset {offset} (arrival {hit}): got {got!r}, "
                                f"expected {expected!r}; stack kinds {snap.kinds()}")
    return {"checked": checked, "failures": failures, "unsupported": unsupported}


def run_all() -> dict:
    return {name: check_case(name) for name in CASES}


