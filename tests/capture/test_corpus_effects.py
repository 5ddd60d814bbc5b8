"""Corpus: side effects on lists, objects, modules and globals (tests/capture/corpus/effects.py)."""
import pytest

from corpus import run_case
from corpus.effects import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_side_effects(case):
    run_case(case)
