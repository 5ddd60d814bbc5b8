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
    from .check import run_model

    serve(lambda case: run_model(case["id"]))


if __name__ == "__main__":
    main()
