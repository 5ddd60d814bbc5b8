"""Errors the back half raises when it cannot compile a graph; callers fall back to eager."""


class UnsupportedGraph(Exception):
    """The graph uses something Kiln cannot compile yet (the message says what)."""


class FakeRunError(UnsupportedGraph):
    """An op raised while the graph ran on fake tensors: most likely the program's own error (bad
    shapes or arguments), possibly a fake kernel stricter than eager. The caller runs the graph
    eagerly to find out which, so a wrong program raises eager's own error."""


class WrittenConstants(UnsupportedGraph):
    """The graph writes tensors it holds as constants (get_attr: optimizer state TorchDynamo keeps
    on the graph): `tensors` are them, so the back end can make them graph inputs instead."""

    def __init__(self, message: str, tensors: list):
        super().__init__(message)
        self.tensors = tensors


class DataDependentOp(UnsupportedGraph):
    """An op of the torch-level graph whose result's shape or value depends on tensor values
    (nonzero, unique, item): `node` names it, so the back end can split the graph there."""

    def __init__(self, message: str, node: str):
        super().__init__(message)
        self.node = node
