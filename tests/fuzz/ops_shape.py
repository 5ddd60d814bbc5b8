"""Entries of the op table that look at shapes: reductions (over one dim, several, or all),
views, indexing, in-place ops (on inputs and through views), matmul, concatenation, creation."""
from __future__ import annotations

import math

from .ops import OpSpec, table
from .program import Code


# --- reductions --------------------------------------------------------------------------------

def reduce_dims(tuple_ok=True, none_ok=True):
    def params(g, a):
        return {"dim": g.reduce_dims(a, tuple_ok=tuple_ok, none_ok=none_ok), "keepdim": g.rng.random() < 0.3}
    return params


def one_dim(g, a):
    d = g.dim(a)
    return None if d is None else {"dim": d, "keepdim": g.rng.random() < 0.3}


def var_params(g, a):
    p = reduce_dims()(g, a)
    p["corr"] = g.rng.choice((0, 1, 1, 2))
    return p


def norm_params(g, a):
    p = reduce_dims()(g, a)
    p["ord"] = g.rng.choice((2, 2, 1, math.inf, -math.inf, 0, 3))
    return p


def dim_only(g, a):
    d = g.dim(a)
    return None if d is None else {"dim": d}


def reduction(name, template, dtypes="any", params=None, outs=1, weight=1.0):
    return OpSpec(name, template, "reduction", dtypes, params or reduce_dims(), outs, weight=weight)


# --- views -------------------------------------------------------------------------------------

def transpose(g, a):
    return {"d0": g.dim(a), "d1": g.dim(a)}


def permute(g, a):
    perm = list(range(a.dim()))
    g.rng.shuffle(perm)
    return {"perm": tuple(p - a.dim() if g.rng.random() < 0.2 else p for p in perm)}


def reshape(g, a):
    return {"shape": g.refactor(tuple(a.shape))}


def unsqueeze(g, a):
    return {"dim": g.rng.randint(-a.dim() - 1, a.dim())}


def squeeze(g, a):
    return {"dim": g.dim(a)} if a.dim() else None


def subscript(g, a):
    return {"sl": Code(g.subscript(a, ints=False))}


def select(g, a):
    return {"sl": Code(g.subscript(a, ints=True))} if a.dim() else None


def narrow(g, a):
    d = g.dim(a)
    size = a.shape[d]
    start = g.rng.randint(0, size)
    return {"dim": d, "start": start - size if start and g.rng.random() < 0.2 else start,
            "length": g.rng.randint(0, size - start)}


def expand(g, a):
    shape = [s if s != 1 or g.rng.random() < 0.5 else g.rng.choice((0, 2, 3)) for s in a.shape]
    shape = [-1 if g.rng.random() < 0.3 else s for s in shape]
    lead = [g.rng.choice((1, 2, 3)) for _ in range(g.rng.choice((0, 0, 1, 2)))]
    return {"shape": tuple(lead + shape)}


def diagonal(g, a):
    d1, d2 = g.rng.sample(range(a.dim()), 2)
    return {"off": g.rng.choice((0, 0, 1, -1, 2)), "d1": d1, "d2": d2}


def movedim(g, a):
    return {"src": g.dim(a), "dst": g.dim(a)}


def unfold(g, a):
    d = g.dim(a)
    size = a.shape[d] if a.dim() else 1
    return {"dim": d, "size": g.rng.randint(0, max(size, 0)) if size else 0, "step": g.rng.randint(1, 3)}


def split(g, a):
    d = g.dim(a)
    size = a.shape[d] if a.dim() else 1
    chunk = g.rng.randint(1, max(size, 1))
    return {"size": chunk, "dim": d, "i": g.rng.randrange(max(1, -(-size // chunk)))}


def flip(g, a):
    return {"dims": g.reduce_dims(a, tuple_ok=True, none_ok=False, as_tuple=True)}


def roll(g, a):
    return {"shift": g.rng.randint(-3, 3), "dim": g.dim(a)}


def repeat(g, a):
    return {"reps": tuple(g.rng.choice((1, 1, 2, 0)) for _ in range(a.dim() + g.rng.choice((0, 0, 1))))}


def pad(g, a):
    n = g.rng.randint(1, min(a.dim(), 2)) if a.dim() else 0
    return {"pad": tuple(g.rng.choice((0, 1, 2, -1)) for _ in range(2 * n)), "c": g.scalar("num", tensors=False)}


# --- indexing ----------------------------------------------------------------------------------

def index_select(g, a):
    d = g.dim(a)
    return {"dim": d, "idx": g.index(a.shape[d] if a.dim() else 1, (g.rng.randint(0, 4),))}


def gather(g, a):
    d = g.dim(a)
    shape = tuple(g.rng.randint(0, s) if i != d else g.rng.randint(0, 4) for i, s in enumerate(a.shape))
    return {"dim": d, "idx": g.index(a.shape[d] if a.dim() else 1, shape, negative=False)}


def take(g, a):
    return {"idx": g.index(a.numel(), (g.rng.randint(0, 4),))}


def adv_index(g, a):
    shape = g.rng.choice(((3,), (2, 2), (), (0,)))
    return {"idx": g.index(a.shape[0], shape)}


def adv_index2(g, a):
    return {"idx": g.index(a.shape[1], (g.rng.randint(1, 3),))}


def mask(g, a):
    return {"m": g.mask(tuple(a.shape))}


def masked_fill(g, a):
    return {"m": g.partner(a, "bool", into=True), "c": g.scalar("any", tensors=False)}


def index_add(g, a):
    d = g.dim(a)
    if d is None or not a.dim():
        return None
    k = g.rng.randint(0, 4)
    src = tuple(k if i == d else s for i, s in enumerate(a.shape))
    return {"dim": d, "idx": g.index(a.shape[d], (k,)), "src": g.new_input(src, g.dtype_of(a))}


# --- in place ----------------------------------------------------------------------------------

def into(rule="any"):
    """A second operand that broadcasts *to* `a`'s shape (an in-place op cannot grow `a`)."""
    return lambda g, a: {"b": g.partner(a, rule, into=True)}


def inplace_scalar(rule="num"):
    return lambda g, a: {"c": g.scalar(rule)}


def setitem(g, a):
    sl = g.subscript(a, ints=g.rng.random() < 0.3)
    target = eval(f"a[{sl}]", {"a": a})  # noqa: S307  (our own subscript, on our own tensor)
    value = g.partner(target, "any", into=True) if g.rng.random() < 0.6 else g.scalar("any", tensors=False)
    return {"sl": Code(sl), "b": value}


def index_put(g, a):
    k = g.rng.randint(0, min(3, a.shape[0]))
    value_shape = (k,) + tuple(a.shape[1:])
    return {"idx": g.index(a.shape[0], (k,), unique=True), "b": g.new_input(value_shape[g.rng.choice((0, 1)):],
                                                                           g.dtype_of(a))}


def through_view(g, a):
    return {"sl": Code(g.subscript(a, ints=False)), "c": g.scalar("num")}


def inplace(name, template, dtypes="any", params=None, weight=1.0, on_inputs=True, min_ndim=0):
    from .ops import no_params
    return OpSpec(name, template, "inplace", dtypes, params or no_params, 0, weight=weight, on_inputs=on_inputs,
                  min_ndim=min_ndim)


# --- matmul, cat, creation ---------------------------------------------------------------------

def matmul(shape_rule):
    def params(g, a):
        shape = shape_rule(g, tuple(a.shape))
        return None if shape is None else {"b": g.new_input(shape, g.dtype_of(a))}
    return params


def _matmul_other(g, s):
    n = g.rng.choice((1, 2, 3, 5))
    if len(s) == 1:
        return g.rng.choice(((s[0],), (s[0], n), (2, s[0], n)))
    return g.rng.choice(((s[-1],), (s[-1], n), (1,) * (len(s) - 2) + (s[-1], n)))


def addmm(g, a):
    n = g.rng.choice((1, 2, 3))
    return {"bias": g.new_input(g.rng.choice(((n,), (a.shape[0], n), (1, n))), g.dtype_of(a)),
            "b": g.new_input((a.shape[1], n), g.dtype_of(a)), "beta": g.rng.choice((1, 0.5, 0)),
            "alpha": g.rng.choice((1, 2.0))}


def linear(g, a):
    n = g.rng.choice((1, 2, 4))
    return {"w": g.new_input((n, a.shape[-1]), g.dtype_of(a)), "bias": g.new_input((n,), g.dtype_of(a))}


def cat(g, a):
    d = g.dim(a)
    if d is None or not a.dim():
        return None
    shape = tuple(g.rng.randint(0, 3) if i == d % a.dim() else s for i, s in enumerate(a.shape))
    return {"b": g.same_shape(a, shape), "dim": d}


def stack(g, a):
    return {"b": g.same_shape(a, tuple(a.shape)), "dim": g.rng.randint(-a.dim() - 1, a.dim())}


def like(g, a):
    return {"dtype": g.dtype("any")}


def full_like(g, a):
    return {"c": g.scalar("num", tensors=False)}


def arange(g, a):
    return {"n": g.rng.randint(0, 9), "dtype": g.dtype("num")}


def item(g, a):
    return {} if a.numel() else None


SHAPE = table(
    reduction("sum", "torch.sum({a}, dim={dim}, keepdim={keepdim})", weight=3),
    reduction("mean", "torch.mean({a}, dim={dim}, keepdim={keepdim})", "float", weight=2),
    reduction("prod", "torch.prod({a}, dim={dim}, keepdim={keepdim})", "num", one_dim, weight=0.7),
    reduction("amax", "torch.amax({a}, dim={dim}, keepdim={keepdim})", "num", reduce_dims(none_ok=False), weight=1.5),
    reduction("amin", "torch.amin({a}, dim={dim}, keepdim={keepdim})", "num", reduce_dims(none_ok=False)),
    reduction("max_dim", "torch.max({a}, dim={dim}, keepdim={keepdim})", "any", one_dim, outs=2),
    reduction("min_dim", "torch.min({a}, dim={dim}, keepdim={keepdim})", "any", one_dim, outs=2, weight=0.5),
    reduction("max_all", "torch.max({a})", "any", lambda g, a: {}, weight=0.5),
    reduction("argmax", "torch.argmax({a}, dim={dim}, keepdim={keepdim})", "num", reduce_dims(tuple_ok=False)),
    reduction("argmin", "torch.argmin({a}, dim={dim}, keepdim={keepdim})", "num", reduce_dims(tuple_ok=False),
              weight=0.5),
    reduction("var", "torch.var({a}, dim={dim}, correction={corr}, keepdim={keepdim})", "float", var_params),
    reduction("std", "torch.std({a}, dim={dim}, correction={corr}, keepdim={keepdim})", "float", var_params,
              weight=0.7),
    reduction("var_mean", "torch.var_mean({a}, dim={dim}, correction={corr}, keepdim={keepdim})", "float",
              var_params, outs=2, weight=0.5),
    reduction("logsumexp", "torch.logsumexp({a}, dim={dim}, keepdim={keepdim})", "float",
              reduce_dims(none_ok=False)),
    reduction("any", "torch.any({a}, dim={dim}, keepdim={keepdim})", weight=0.7),
    reduction("all", "torch.all({a}, dim={dim}, keepdim={keepdim})", weight=0.5),
    reduction("vector_norm", "torch.linalg.vector_norm({a}, ord={ord}, dim={dim}, keepdim={keepdim})", "float",
              norm_params, weight=0.7),
    reduction("nansum", "torch.nansum({a}, dim={dim}, keepdim={keepdim})", "float", weight=0.5),
    reduction("count_nonzero", "torch.count_nonzero({a}, dim={dim})", "any",
              lambda g, a: {"dim": g.reduce_dims(a)}, weight=0.3),
    reduction("softmax", "torch.softmax({a}, dim={dim})", "float", dim_only, weight=1.5),
    reduction("log_softmax", "torch.log_softmax({a}, dim={dim})", "float", dim_only),
    reduction("cumsum", "torch.cumsum({a}, dim={dim})", "num", dim_only, weight=0.5),
    OpSpec("transpose", "{a}.transpose({d0}, {d1})", "view", params=transpose, min_ndim=1, weight=2),
    OpSpec("permute", "{a}.permute({perm})", "view", params=permute, min_ndim=2, weight=1.5),
    OpSpec("t", "{a}.t()", "view", params=lambda g, a: {} if a.dim() <= 2 else None),
    OpSpec("mT", "{a}.mT", "view", min_ndim=2, weight=0.5),
    OpSpec("reshape", "{a}.reshape({shape})", "view", params=reshape, weight=2),
    OpSpec("view", "{a}.view({shape})", "view", params=reshape),
    OpSpec("flatten", "{a}.flatten()", "view", weight=0.5),
    OpSpec("unsqueeze", "{a}.unsqueeze({dim})", "view", params=unsqueeze),
    OpSpec("squeeze", "{a}.squeeze({dim})", "view", params=squeeze, weight=0.5),
    OpSpec("squeeze_all", "{a}.squeeze()", "view", weight=0.3),
    OpSpec("slice", "{a}[{sl}]", "view", params=subscript, weight=3),
    OpSpec("select", "{a}[{sl}]", "view", params=select, weight=1.5),
    OpSpec("narrow", "{a}.narrow({dim}, {start}, {length})", "view", params=narrow, min_ndim=1),
    OpSpec("expand", "{a}.expand({shape})", "view", params=expand, weight=1.5),
    OpSpec("diagonal", "torch.diagonal({a}, offset={off}, dim1={d1}, dim2={d2})", "view", params=diagonal,
           min_ndim=2, weight=0.5),
    OpSpec("movedim", "torch.movedim({a}, {src}, {dst})", "view", params=movedim, min_ndim=1, weight=0.5),
    OpSpec("unfold", "{a}.unfold({dim}, {size}, {step})", "view", params=unfold, weight=0.5),
    OpSpec("split", "{a}.split({size}, dim={dim})[{i}]", "view", params=split, min_ndim=1, weight=0.5),
    OpSpec("contiguous", "{a}.contiguous()", "view", weight=0.5),
    OpSpec("clone", "{a}.clone()", "view", weight=0.5),
    OpSpec("flip", "torch.flip({a}, {dims})", "other", params=flip, min_ndim=1, weight=0.5),
    OpSpec("roll", "torch.roll({a}, {shift}, {dim})", "other", params=roll, min_ndim=1, weight=0.5),
    OpSpec("repeat", "{a}.repeat({reps})", "other", params=repeat, weight=0.5),
    OpSpec("pad", "torch.nn.functional.pad({a}, {pad}, value={c})", "other", "num", pad, min_ndim=1, weight=0.5),
    OpSpec("tril", "torch.tril({a}, {k})", "other", params=lambda g, a: {"k": g.rng.randint(-1, 1)}, min_ndim=2,
           weight=0.3),
    OpSpec("sort", "torch.sort({a}, dim={dim}, stable=True)", "other", "num", dim_only, 2, weight=0.3),
    OpSpec("index_select", "torch.index_select({a}, {dim}, {idx})", "index", params=index_select, weight=1.5),
    OpSpec("gather", "torch.gather({a}, {dim}, {idx})", "index", params=gather),
    OpSpec("take", "torch.take({a}, {idx})", "index", params=take, weight=0.5),
    OpSpec("adv_index", "{a}[{idx}]", "index", params=adv_index, min_ndim=1, weight=1.5),
    OpSpec("adv_index2", "{a}[:, {idx}]", "index", params=adv_index2, min_ndim=2),
    OpSpec("mask_index", "{a}[{m}]", "index", params=mask, weight=0.3),
    OpSpec("masked_fill", "{a}.masked_fill({m}, {c})", "index", params=masked_fill),
    OpSpec("index_add", "torch.index_add({a}, {dim}, {idx}, {src})", "index", "num", index_add, weight=0.5),
    inplace("add_", "{a}.add_({b})", params=into(), weight=2),
    inplace("iadd", "{a} += {b}", "num", into("num")),
    inplace("sub_", "{a}.sub_({b})", "num", into("num")),
    inplace("mul_", "{a}.mul_({c})", params=inplace_scalar("num"), weight=1.5),
    inplace("div_", "{a}.div_({b})", "float", into("num")),
    inplace("floor_divide_", "{a}.floor_divide_({b})", "num", into("num"), weight=0.5),
    inplace("pow_", "{a}.pow_({c})", "num", inplace_scalar("num"), weight=0.5),
    inplace("clamp_", "{a}.clamp_({lo}, {hi})", "num", lambda g, a: {"lo": -1, "hi": g.scalar("num", False)}),
    inplace("relu_", "{a}.relu_()", "num"),
    inplace("neg_", "{a}.neg_()", "num", weight=0.5),
    inplace("sin_", "{a}.sin_()", "float", weight=0.5),
    inplace("zero_", "{a}.zero_()", weight=0.5),
    inplace("fill_", "{a}.fill_({c})", params=lambda g, a: {"c": g.scalar("any")}, weight=0.5),
    inplace("copy_", "{a}.copy_({b})", params=lambda g, a: {"b": g.partner(a, g.copy_rule(a), into=True)}),
    inplace("setitem", "{a}[{sl}] = {b}", params=setitem, min_ndim=1, weight=2),
    inplace("view_mul_", "{a}[{sl}].mul_({c})", "num", through_view, min_ndim=1),
    inplace("t_mul_", "{a}.t().mul_({c})", "num", inplace_scalar("num"), weight=0.5),
    inplace("masked_fill_", "{a}.masked_fill_({m}, {c})", params=masked_fill, weight=0.5),
    inplace("index_put_", "{a}.index_put_(({idx},), {b})", params=index_put, min_ndim=1, weight=0.5),
    inplace("add_tmp", "{a}.add_({b})", params=into(), on_inputs=False, weight=0.5),
    OpSpec("matmul", "{a} @ {b}", "matmul", "num", matmul(_matmul_other), min_ndim=1, weight=2),
    OpSpec("mm", "torch.mm({a}, {b})", "matmul", "num",
           matmul(lambda g, s: (s[1], g.rng.choice((1, 2, 3))) if len(s) == 2 else None)),
    OpSpec("bmm", "torch.bmm({a}, {b})", "matmul", "num",
           matmul(lambda g, s: (s[0], s[2], g.rng.choice((1, 2, 3))) if len(s) == 3 else None), weight=0.5),
    OpSpec("mv", "torch.mv({a}, {b})", "matmul", "num", matmul(lambda g, s: (s[1],) if len(s) == 2 else None),
           weight=0.5),
    OpSpec("dot", "torch.dot({a}, {b})", "matmul", "num", matmul(lambda g, s: s if len(s) == 1 else None),
           weight=0.5),
    OpSpec("addmm", "torch.addmm({bias}, {a}, {b}, beta={beta}, alpha={alpha})", "matmul", "float",
           lambda g, a: addmm(g, a) if a.dim() == 2 else None, weight=0.5),
    OpSpec("linear", "torch.nn.functional.linear({a}, {w}, {bias})", "matmul", "float",
           lambda g, a: linear(g, a) if a.dim() >= 1 else None, weight=0.5),
    OpSpec("cat", "torch.cat([{a}, {b}], dim={dim})", "other", params=cat, weight=1.5),
    OpSpec("stack", "torch.stack([{a}, {b}], dim={dim})", "other", params=stack, weight=0.5),
    OpSpec("zeros_like", "torch.zeros_like({a}, dtype={dtype})", "other", params=like, weight=0.3),
    OpSpec("full_like", "torch.full_like({a}, {c})", "other", params=full_like, weight=0.3),
    OpSpec("arange", "torch.arange({n}, dtype={dtype})", "other", params=arange, nullary=True, weight=0.3),
    OpSpec("item", "{a}.sum().item()", "other", "num", item, weight=0.5),
)
