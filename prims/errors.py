"""Errors the back half raises when it cannot compile a graph; callers fall back to eager."""


class UnsupportedGraph(Exception):
    """The graph uses something Kiln cannot compile yet (the message says what)."""


class FakeRunError(UnsupportedGraph):
    """An op raised while the graph ran on fake tensors: most likely the program's own error (bad
    shapes or arguments), possibly a fake kernel stricter than eager. The caller runs the graph
    eagerly to find out which, so a wrong program raises eager's own error."""
