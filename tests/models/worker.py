"""The worker process of the model sweep: one model type a case (`{"id": NAME}`) on stdin, its
result (check.run_model) on the protocol; the fuzzer's runner keeps it (tests/fuzz/runner.py).

    python -m tests.models.worker
"""
from __future__ import annotations

import warnings

try:
    from fuzz.runner import serve
except ImportError:  # python -m tests.models
    from tests.fuzz.runner import serve


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from .check import _first_line, _out_of_memory, run_model

    def handle(case):
        try:
            return run_model(case["id"])
        except Exception as e:  # noqa: BLE001 - anything else is the sweep's own bug (ERROR, from serve)
            if not _out_of_memory(e):
                raise
            return {"id": case["id"], "class": "SKIP", "skip": f"memory: {_first_line(e)}"}

    serve(handle)


if __name__ == "__main__":
    main()
