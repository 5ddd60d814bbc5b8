"""Corpus: grad-mode blocks, calls and decorators (tests/capture/corpus/grad_mode.py)."""
import pytest

from corpus import run_case
from corpus.grad_mode import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_grad_mode(case):
    run_case(case)
