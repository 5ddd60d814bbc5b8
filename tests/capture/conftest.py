import pathlib
import sys
import warnings

import pytest
import torch

from kiln import capture, config

# The feature corpus (tests/capture/corpus/) is imported by the test_corpus_*.py files.
sys.path.insert(0, str(pathlib.Path(__file__).parent))


class CountingBackend:
    """A backend that records every graph it is given and runs it as it is."""

    def __init__(self):
        self.graphs: list[torch.fx.GraphModule] = []
        self.example_inputs: list[list] = []

    @property
    def count(self) -> int:
        return len(self.graphs)

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        self.example_inputs.append(example_inputs)
        return gm.forward


@pytest.fixture
def counter():
    return CountingBackend()


@pytest.fixture(autouse=True)
def fresh_capture():
    capture.reset()
    saved_limit = config.recompile_limit
    yield
    config.recompile_limit = saved_limit
    capture.reset()


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", capture.FallbackWarning)
        yield
