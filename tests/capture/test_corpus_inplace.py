"""Corpus: in-place tensor ops (tests/capture/corpus/inplace.py)."""
import pytest

from corpus import run_case
from corpus.inplace import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_inplace(case):
    run_case(case)
