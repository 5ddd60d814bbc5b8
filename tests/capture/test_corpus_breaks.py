"""Corpus: graph breaks (tests/capture/corpus/breaks.py)."""
import pytest

from corpus import run_case
from corpus.breaks import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_graph_breaks(case):
    run_case(case)
