"""`with` blocks. Grad-mode context managers (variables/grad_mode.py) and torch.autocast
(variables/autocast.py) are traced.

BEFORE_WITH enters the context and pushes its `__exit__` (a WithExitVariable) and the
`__enter__` result; the normal exit path, the same normalised bytecode on 3.11-3.13, is a
plain CALL of that `__exit__` with three Nones. The exception path (PUSH_EXC_INFO,
WITH_EXCEPT_START, RERAISE, POP_EXCEPT) is reached only when an exception is raised, which
whole-graph capture never traces: an error while tracing ends the trace instead. Each active
block is kept on `tx.block_stack` with its cleanup handler from the decoded exception table,
which is what a graph break needs to re-enter the block in a resume function.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..exc import Unsupported
from ..variables import ConstantVariable
from ..variables.autocast import AutocastContextVariable
from ..variables.grad_mode import CONTEXT_HINT, GradModeContextVariable, WithExitVariable
from .table import handles


@dataclass
class WithBlock:
    context: GradModeContextVariable
    handler_offset: int | None   # the block's cleanup code (PUSH_EXC_INFO ... WITH_EXCEPT_START)
    stack_depth: int             # stack depth the handler restores, from the exception table


@handles("BEFORE_WITH")
def before_with(tx, inst):
    context = tx.pop()
    if not isinstance(context, (GradModeContextVariable, AutocastContextVariable)):
        raise Unsupported(f"`with` on {context!r}", hint=CONTEXT_HINT)
    body = tx.instructions[tx.ip] if tx.ip < len(tx.instructions) else None
    entry = tx.decoded.handler_at(body.offset) if body is not None else None
    block = WithBlock(context, entry.target if entry else None, entry.depth if entry else len(tx.stack))
    context.enter(tx)
    tx.block_stack.append(block)
    tx.push(WithExitVariable(context, block))
    # what __enter__ returns: None for the grad-mode classes, the autocast object itself
    tx.push(context if isinstance(context, AutocastContextVariable) else ConstantVariable(None))
