"""Running a captured graph eagerly, without fx's generated code.

Every eager fallback of the back end runs the graph it was given. `gm.forward` is fx's printed
Python, and that printing is lossy: `operator.pow(-0.5, x)` prints as `-0.5 ** x`, which Python
reads as `-(0.5 ** x)`, so the "eager" result would be wrong. `eager_runner(gm)` generates its own
function from the nodes instead, in which every call is a plain call of a global bound to the
node's target and every constant is a global bound to the constant itself: nothing is printed
with `repr`, nothing is spelled as an operator. It runs at the speed of `gm.forward` (one Python
call per node), and frees each value after its last use, as `gm.forward` does.
"""
from __future__ import annotations

import keyword
import operator
from typing import Any, Callable

import torch.fx as fx

_INLINE = (type(None), bool, int, str)  # repr of these reads back as the same value in any argument position


class _Source:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.globals: dict[str, Any] = {"root": gm}
        self.names: dict[fx.Node, str] = {}
        self.lines: list[str] = []

    def constant(self, value) -> str:
        if type(value) in _INLINE:
            return repr(value)
        name = f"c{len(self.globals)}"
        self.globals[name] = value
        return name

    def arg(self, a) -> str:
        if isinstance(a, fx.Node):
            return self.names[a]
        if isinstance(a, tuple):
            items = "".join(self.arg(x) + ", " for x in a)
            if type(a) is tuple:
                return f"({items})"
            if hasattr(type(a), "_fields"):  # a named tuple: rebuilt as itself
                return f"{self.constant(type(a))}({items})"
            return f"{self.constant(type(a))}(({items}))"  # torch.Size and other tuple types
        if isinstance(a, list):  # fx keeps lists as immutable_list: a plain list is what gm.forward makes
            return f"[{', '.join(self.arg(x) for x in a)}]"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{self.constant(k)}: {self.arg(v)}" for k, v in a.items()) + "}"
        if isinstance(a, slice):
            return f"slice({self.arg(a.start)}, {self.arg(a.stop)}, {self.arg(a.step)})"
        return self.constant(a)

    def call_args(self, node: fx.Node) -> str:
        parts = [self.arg(a) for a in node.args]
        parts += [f"{k}={self.arg(v)}" for k, v in node.kwargs.items()]
        return ", ".join(parts)

    def build(self) -> str:
        nodes = list(self.gm.graph.nodes)
        last_use: dict[fx.Node, fx.Node] = {}
        for node in nodes:
            for used in node.all_input_nodes:
                last_use[used] = node
        frees: dict[fx.Node, list[str]] = {}
        params = []
        for node in nodes:
            name = self.names[node] = f"v{len(self.names)}"
            if node.op == "placeholder":
                if node.target.startswith("*"):
                    params.append(f"*{name}")
                else:
                    params.append(name if not node.args else f"{name}={self.constant(node.args[0])}")
                continue
            if node.op == "output":
                self.lines.append(f"    return {self.arg(node.args[0])}")
                break
            self.lines.append(f"    {name} = {self._expr(node)}")
            if node in last_use:
                frees.setdefault(last_use[node], []).append(name)
            else:
                self.lines.append(f"    del {name}")
            dead = frees.pop(node, ())
            if dead:
                self.lines.append(f"    del {', '.join(dead)}")
        return f"def run({', '.join(params)}):\n" + "\n".join(self.lines) + "\n"

    def _expr(self, node: fx.Node) -> str:
        if node.op == "call_function":
            return f"{self.constant(node.target)}({self.call_args(node)})"
        if node.op == "call_method":
            self_arg, *rest = node.args
            args = ", ".join([self.arg(a) for a in rest] + [f"{k}={self.arg(v)}" for k, v in node.kwargs.items()])
            if node.target.isidentifier() and not keyword.iskeyword(node.target):
                return f"{self.arg(self_arg)}.{node.target}({args})"
            return f"getattr({self.arg(self_arg)}, {node.target!r})({args})"
        if node.op == "call_module":
            return f"{self.constant(operator.attrgetter(node.target))}(root)({self.call_args(node)})"
        if node.op == "get_attr":
            return f"{self.constant(operator.attrgetter(node.target))}(root)"
        raise ValueError(f"unknown fx node op {node.op!r}")


def eager_runner(gm: fx.GraphModule) -> Callable:
    """A function computing what `gm(*inputs)` computes, run op by op, from the graph's nodes."""
    source = _Source(gm)
    text = source.build()
    namespace = dict(source.globals)
    exec(compile(text, f"<kiln eager graph {gm.__class__.__name__}>", "exec"), namespace)
    run = namespace["run"]
    run.__kiln_source__ = text
    codegen = gm.graph._codegen
    if type(codegen) is fx.graph.CodeGen:
        return run
    # a graph with its own calling convention (pytree inputs/outputs): keep it, as gm.forward does
    return lambda *args: codegen.process_outputs(run(*codegen.process_inputs(*args)))
