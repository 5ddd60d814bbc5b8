"""Errors the back half raises when it cannot compile a graph; callers fall back to eager."""


class UnsupportedGraph(Exception):
    """The graph uses something Kiln cannot compile yet (the message says what)."""
