"""Fixtures the end-to-end tests share: a test module opts in with
`pytestmark = pytest.mark.usefixtures("strict")` (or "fresh")."""
import pytest
import torch

import kiln
from kiln import config


@pytest.fixture
def fresh():
    """TorchDynamo's caches, Kiln's caches and records empty before the test; TorchDynamo's after."""
    torch._dynamo.reset()
    kiln.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def strict(fresh, monkeypatch):
    """`fresh`, with KILN_STRICT=1: a graph that would run eagerly raises instead."""
    monkeypatch.setattr(config, "strict", True)
