"""A compile-time check of a generated wrapper: every name it reads or deletes exists by then.

The wrapper is straight-line Python (allocations, kernel calls, `del`s, copy-backs, the return,
and the index check's `if ...: return`). A plan that frees a buffer it never allocated, or reads
one after freeing it, would otherwise fail only when called (`UnboundLocalError`), in the user's
program. Walking the function's statements once in order, with the names bound so far, finds
that at compile time, where it makes the graph run eagerly instead.
"""
from __future__ import annotations

import ast
import builtins

from kiln.prims import UnsupportedGraph


class WrapperNameError(UnsupportedGraph):
    """The generated wrapper would read or delete a name that is not bound at that point."""


def check_names(source: str, namespace: dict, function: str = "call") -> None:
    """Raise WrapperNameError if `function` in `source` can use a local before binding it (or after
    deleting it), or a global that `namespace` lacks."""
    tree = ast.parse(source)
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function)
    known = set(namespace) | set(dir(builtins))
    bound = {a.arg for a in fn.args.args}
    _check_block(fn.body, bound, known)


def _check_block(statements, bound: set[str], known: set[str]) -> None:
    for stmt in statements:
        if isinstance(stmt, ast.If):
            _check_loads(stmt.test, bound, known)
            _check_block(stmt.body, set(bound), known)
            _check_block(stmt.orelse, set(bound), known)
            continue
        if isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    if target.id not in bound:
                        raise WrapperNameError(f"the wrapper deletes {target.id!r}, which is not bound there "
                                               f"(line {stmt.lineno})")
                    bound.discard(target.id)
                else:
                    _check_loads(target, bound, known)
            continue
        value = getattr(stmt, "value", None)
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return)):
            if value is not None:
                _check_loads(value, bound, known)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound.add(target.id)
                elif target is not None:
                    _check_loads(target, bound, known)
            continue
        if isinstance(stmt, ast.Pass):
            continue
        raise WrapperNameError(f"unexpected statement in the wrapper: {ast.dump(stmt)[:80]}")


def _check_loads(expr, bound: set[str], known: set[str]) -> None:
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and node.id not in bound and node.id not in known:
            raise WrapperNameError(f"the wrapper reads {node.id!r} before it is bound (line {node.lineno})")
