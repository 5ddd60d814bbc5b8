"""Every `aten._foreach_*` op (in-place and functional, every overload) compiled through the back end
(traced element by element, prims/foreach.py) against eager: results and the lists written in place,
on lists holding a matrix, a 0-dim tensor and an empty tensor, special values included. Every third
op by default; KILN_FULL=1 runs them all."""
import math

import pytest
import torch
import torch.fx as fx

import kiln
from kiln import config, records

SHAPES = [(3, 4), (), (0, 2)]


def _schemas():
    found = {}
    for s in torch._C._jit_get_all_schemas():
        name = s.name.split("::")[1]
        if s.name.startswith("aten::_foreach_") and not s.overload_name.endswith("out") and not s.is_mutable or \
                s.name.startswith("aten::_foreach_") and name.endswith("_"):
            found[f"{name}.{s.overload_name or 'default'}"] = s
    return dict(sorted(found.items()))


SCHEMAS = _schemas()
CASES = [pytest.param(key, marks=() if i % 3 == 0 else pytest.mark.slow) for i, key in enumerate(SCHEMAS)]


def _tensor(shape, seed, positive):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(shape, generator=g) * 2 + 0.25 if positive else torch.randn(shape, generator=g)
    if t.numel() > 3:
        t.view(-1)[:3] = torch.tensor([0.5, -0.0, 7.0]) if positive else torch.tensor([math.inf, -0.0, 1e-30])
    return t


def _inputs(schema):
    """(args, flat tensors): one value per argument; every tensor is a graph input."""
    positive = schema.name.split("_foreach_")[1].rstrip("_") in {"log", "log10", "log1p", "log2", "sqrt", "rsqrt",
                                                                 "lgamma", "reciprocal", "pow", "div", "addcdiv"}
    tensors, args, seed = [], [], 0
    for a in schema.arguments:
        kind = str(a.type)
        if a.kwarg_only:
            break
        if kind == "List[Tensor]":
            value = [_tensor(s, seed + i, positive) for i, s in enumerate(SHAPES)]
            tensors += value
        elif kind == "Tensor":  # a 0-dim scalar, or addcmul/addcdiv's 1-D per-element scalars
            value = torch.tensor([0.5, -1.5, 2.0]) if a.name == "scalars" else torch.tensor(0.75)
            tensors.append(value)
        elif kind == "List[number]":
            value = [0.5, -1.5, 2.0]
        elif kind == "number":
            value = 3 if a.name == "ord" else 0.5
        elif a.has_default_value() or a.kwarg_only:
            break
        else:
            raise AssertionError(f"unexpected argument {a} of {schema}")
        seed += 10
        args.append(value)
    return args, tensors


def _graph(op, args):
    """An fx graph calling `op` on placeholders; it returns the op's result and every input list."""
    g = fx.Graph()
    nodes = {}

    def node_of(t):
        if id(t) not in nodes:
            nodes[id(t)] = g.placeholder(f"t{len(nodes)}")
        return nodes[id(t)]

    graph_args = [[node_of(t) for t in a] if isinstance(a, list) and a and isinstance(a[0], torch.Tensor)
                  else node_of(a) if isinstance(a, torch.Tensor) else a for a in args]
    result = g.call_function(op, tuple(graph_args))
    g.output((result, [n for a in graph_args if isinstance(a, list) for n in a if isinstance(n, fx.Node)]))
    return fx.GraphModule(torch.nn.Module(), g)


@pytest.mark.parametrize("key", CASES)
def test_foreach_op(key, monkeypatch):
    monkeypatch.setattr(config, "strict", True)
    kiln.reset()
    records.clear()
    schema = SCHEMAS[key]
    name, overload = key.split(".")
    op = getattr(getattr(torch.ops.aten, name), overload)
    args, tensors = _inputs(schema)
    clones = [t.clone() for t in tensors]
    gm = _graph(op, args)
    try:
        expected = gm(*clones)
    except RuntimeError as e:  # eager refuses these inputs (an op without an overload for them)
        pytest.skip(f"eager raises: {e}")
    got = kiln.compile_fx(gm, [t.clone() for t in tensors])(*tensors)
    torch.testing.assert_close(got, expected, equal_nan=True)
    torch.testing.assert_close(tensors, clones, equal_nan=True)  # the lists written in place
    (record,) = records.backend_records()
    assert record.compiled and not record.fallbacks, str(record)  # kernels and library calls only
