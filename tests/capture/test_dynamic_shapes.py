"""Dynamic shapes in capture: symbolic sizes and ints, automatic dynamic, mark_dynamic/mark_static,
shape guards, 0/1 specialisation, and the graph format a backend sees (TorchDynamo's)."""
import logging

import pytest
import torch

import kiln
from kiln import capture

BACKENDS = ["counter", "kiln"]


@pytest.fixture
def recompiles(caplog):
    caplog.set_level(logging.DEBUG, logger="kiln.recompiles")
    return caplog


def _backend(name, counter):
    return counter if name == "counter" else "kiln"


def _graph_count(name, counter, fn):
    """Graphs captured for `fn`: exact with the counting backend, from the records with kiln's."""
    if name == "counter":
        return counter.count
    return sum(1 for record in capture.compiled_records() if record.graph is not None)


def _symbols(gm):
    return [node for node in gm.graph.nodes if node.op == "placeholder"
            and isinstance(node.meta["example_value"], torch.SymInt)]


def scale_rows(x):
    return torch.relu(x) * 2 + x.sum(0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_automatic_dynamic_batch_sweep_compiles_twice(backend, counter):
    compiled = kiln.compile(scale_rows, backend=_backend(backend, counter))
    for batch in range(1, 17):
        x = torch.randn(batch, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert _graph_count(backend, counter, scale_rows) <= 2
    if backend == "counter":
        assert counter.count == 2 and not _symbols(counter.graphs[0]) and len(_symbols(counter.graphs[1])) == 1


def test_dynamic_true_one_compile_plus_zero_one(counter):
    compiled = kiln.compile(scale_rows, backend=counter, dynamic=True)
    for batch in range(2, 9):
        x = torch.randn(batch, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert counter.count == 1
    assert len(_symbols(counter.graphs[0])) == 2  # both dims
    for batch in (1, 0, 1, 0, 7):
        x = torch.randn(batch, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert counter.count == 3  # size 1 and size 0 are specialised, each once


def test_dynamic_false_one_graph_per_shape(counter):
    compiled = kiln.compile(scale_rows, backend=counter, dynamic=False)
    for batch in (2, 3, 4, 5, 3):
        x = torch.randn(batch, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert counter.count == 4 and not any(_symbols(gm) for gm in counter.graphs)


def test_graph_format_is_dynamos(counter):
    def f(x, y, n):
        b, t = x.shape[:2]
        z = x.view(b * t, -1) * n
        return z.sum(0) + y.numel() + x.size(1)

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    x, y = torch.randn(3, 4, 5), torch.randn(6)
    torch.testing.assert_close(compiled(x, y, 3), f(x, y, 3))
    gm, example_inputs = counter.graphs[0], counter.example_inputs[0]
    placeholders = [node for node in gm.graph.nodes if node.op == "placeholder"]
    kinds = [type(node.meta["example_value"]).__name__ for node in placeholders]
    assert kinds == ["SymInt", "SymInt", "SymInt", "FakeTensor", "SymInt", "SymInt"]  # symbols before their tensor
    assert [node.name for node in placeholders][3:5] == ["l_x_", "l_n_"]
    assert [type(value) for value in example_inputs] == [torch.SymInt] * 3 + [torch.Tensor] + [torch.SymInt] * 2
    assert example_inputs[3] is x
    fake_x = placeholders[3].meta["example_value"]
    assert [str(size) for size in fake_x.shape] == [node.name for node in placeholders[:3]]
    targets = {node.target for node in gm.graph.nodes if node.op == "call_function"}
    assert any(getattr(t, "__name__", "") == "mul" for t in targets)  # b * t traced symbolically
    for shape, n in (((5, 2, 7), 4), ((2, 6, 3), 9)):
        x, y = torch.randn(*shape), torch.randn(11)
        torch.testing.assert_close(compiled(x, y, n), f(x, y, n))
    assert counter.count == 1


def test_size_reads_of_intermediates_are_sym_size_nodes(counter):
    def f(x):
        y = torch.cat([x, x])
        return y.new_zeros(y.shape[0], y.size(1) + 1) + y.numel()

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for rows in (3, 5):
        x = torch.randn(rows, 4)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count == 1
    targets = [node.target for node in counter.graphs[0].graph.nodes if node.op == "call_function"]
    assert torch.ops.aten.sym_size.int in targets and torch.ops.aten.sym_numel.default in targets


@pytest.mark.parametrize("backend", BACKENDS)
def test_view_shape_arithmetic(backend, counter):
    def f(x):
        b, t, c = x.shape
        flat = x.reshape(b * t, c)
        return (flat @ flat.transpose(0, 1)).view(b, t, b * t).mean(-1) + c

    compiled = kiln.compile(f, backend=_backend(backend, counter))
    for b, t in ((1, 1), (2, 3), (3, 3), (4, 2), (5, 7), (0, 3), (2, 0), (6, 5)):
        x = torch.randn(b, t, 3)
        torch.testing.assert_close(compiled(x), f(x))
    if backend == "counter":
        assert counter.count <= 5  # static, symbolic, and the 0/1 specialisations it meets


def test_mark_dynamic_honoured_under_dynamic_false(counter):
    compiled = kiln.compile(scale_rows, backend=counter, dynamic=False)
    x = torch.randn(4, 5)
    kiln.mark_dynamic(x, 0)
    compiled(x)
    assert [str(node.meta["example_value"].shape[0]) for node in counter.graphs[0].graph.nodes
            if node.op == "placeholder" and isinstance(node.meta["example_value"], torch.Tensor)][0].startswith("s")
    for batch in (3, 9, 12):
        x = torch.randn(batch, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert counter.count == 1


def test_torch_dynamo_mark_dynamic_and_mark_static(counter):
    def f(x):
        return x * x.shape[1]

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    x = torch.randn(3, 4)
    torch._dynamo.mark_static(x, 1)
    compiled(x)
    fake = next(node.meta["example_value"] for node in counter.graphs[0].graph.nodes if node.op == "placeholder"
                and isinstance(node.meta["example_value"], torch.Tensor))
    assert isinstance(fake.shape[0], torch.SymInt) and fake.shape[1] == 4 and not isinstance(fake.shape[1], torch.SymInt)

    capture.reset()
    counter.graphs.clear()
    compiled = kiln.compile(f, backend=counter, dynamic=False)
    y = torch.randn(3, 4)
    torch._dynamo.mark_dynamic(y, 1)
    torch.testing.assert_close(compiled(y), f(y))
    z = torch.randn(3, 7)
    torch.testing.assert_close(compiled(z), f(z))
    assert counter.count == 1


def test_maybe_mark_dynamic(counter):
    compiled = kiln.compile(scale_rows, backend=counter, dynamic=False)
    x = torch.randn(4, 5)
    torch._dynamo.maybe_mark_dynamic(x, 0)
    compiled(x)
    assert len(_symbols(counter.graphs[0])) == 1


def test_symbolic_guard_failure_is_logged(counter, recompiles):
    compiled = kiln.compile(scale_rows, backend=counter, dynamic=True)
    compiled(torch.randn(4, 5))
    compiled(torch.randn(1, 5))
    assert "size guard failed: 2 <= L['x'].size()[0]" in recompiles.text
    assert counter.count == 2


def test_automatic_dynamic_logs_dims(counter, recompiles):
    compiled = kiln.compile(scale_rows, backend=counter)
    compiled(torch.randn(4, 5))
    compiled(torch.randn(6, 5))
    assert "tensor 'x' size mismatch at dim 0: expected 4, got 6" in recompiles.text
    assert "automatic dynamic: x size dim 0 changed 4 -> 6: symbolic from now on" in recompiles.text


def test_duck_sized_equality_guard(counter, recompiles):
    def f(x, y):
        return x + y.sum()

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    compiled(torch.randn(4), torch.randn(4))
    compiled(torch.randn(5), torch.randn(5))
    assert counter.count == 1
    x, y = torch.randn(5), torch.randn(6)
    torch.testing.assert_close(compiled(x, y), f(x, y))
    assert counter.count == 2
    assert "size guard failed: L['y'].size()[0] == L['x'].size()[0]" in recompiles.text


def test_shape_equality_guards_relations_not_values(counter):
    def f(x, y):
        if x.shape == y.shape:
            return x + y
        return x - y.sum()

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for a, b in ((3, 3), (4, 4), (6, 6), (3, 5), (4, 7)):
        x, y = torch.randn(a, 2), torch.randn(b, 2)
        torch.testing.assert_close(compiled(x, y), f(x, y))
    assert counter.count == 2  # equal shapes, unequal shapes


def test_specialised_branch_on_size(counter):
    def f(x):
        if x.shape[0] > 4:
            return x * 2
        return x - 1

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for batch in (2, 3, 4, 5, 6, 9):
        x = torch.randn(batch)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count == 2  # one graph per side of the branch


@pytest.mark.parametrize("backend", BACKENDS)
def test_varying_int_argument(backend, counter):
    def f(x, n):
        return x * n + n // 2

    compiled = kiln.compile(f, backend=_backend(backend, counter))
    for n in (2, 3, 4, 5, 6, 7):
        x = torch.randn(3)
        torch.testing.assert_close(compiled(x, n), f(x, n))
    assert _graph_count(backend, counter, f) == 2
    if backend == "counter":
        assert [node.name for node in _symbols(counter.graphs[1])] == ["l_n_"]
        compiled(torch.randn(3), 2.5)  # a float is not the int the graph took
        assert counter.count == 3


def test_int_zero_one_specialised(counter):
    def f(x, n):
        return x + n

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for n in (1, 0, 5, 6):
        x = torch.randn(3)
        torch.testing.assert_close(compiled(x, n), f(x, n))
    assert counter.count == 3  # 1, 0, then one symbolic graph


class Block(torch.nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.proj = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        att = att.softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return x + self.mlp(self.norm2(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_block_varying_seq_len(backend, counter):
    torch.manual_seed(0)
    block = Block().eval()
    compiled = kiln.compile(block, backend=_backend(backend, counter))
    with torch.no_grad():
        for seq in (3, 4, 5, 6, 8, 11, 1):
            x = torch.randn(2, seq, 16)
            torch.testing.assert_close(compiled(x), block(x), rtol=1e-4, atol=1e-4)
    if backend == "counter":
        assert counter.count == 3  # static, symbolic seq len, then seq len 1


def _opaque(value):
    return value


def test_graph_break_with_symbolic_inputs(counter):
    opaque = kiln.disable(_opaque)

    def f(x):
        b = x.shape[0]
        y = opaque(x * 2)  # graph break
        return y.view(b, -1).sum(1) + b

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for batch in (2, 4, 5, 8):  # (not 3 or 7: duck sizing would make that dim the same symbol)
        x = torch.randn(batch, 3, 7)
        torch.testing.assert_close(compiled(x), f(x))
    first = counter.count
    assert first == 2  # one graph before the break, one in the resume function
    for batch in (6, 9, 12):
        x = torch.randn(batch, 3, 7)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count == first


def test_graph_break_automatic_dynamic(counter):
    opaque = kiln.disable(_opaque)

    def f(x):
        y = opaque(x + 1)
        return y * y.shape[0]

    compiled = kiln.compile(f, backend=counter)
    for batch in range(1, 10):
        x = torch.randn(batch, 2)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count <= 4  # each of the two graphs: static, then symbolic


@pytest.mark.parametrize("op", [
    lambda x: x[x > 0].sum() + x.nonzero().shape[0],
    lambda x: torch.unique(x).sum(),
    lambda x: x.new_zeros(int(x.sum().item() > 0) + 2) + x.shape[0],
])
def test_data_dependent_sizes_break_cleanly(op, counter):
    compiled = kiln.compile(op, backend=counter, dynamic=True)
    for batch in (3, 4, 6):
        x = torch.randn(batch)
        torch.testing.assert_close(compiled(x), op(x))


def test_returning_a_size(counter):
    def f(x):
        return x.shape[0] * 2, x.size(0), x + 1

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for batch in (3, 7):
        x = torch.randn(batch)
        got, want = compiled(x), f(x)
        assert got[:2] == want[:2] and type(got[0]) is int
        torch.testing.assert_close(got[2], want[2])
    assert counter.count == 1


PROGRAMS = {  # (x, n) -> value; each must match eager over a sweep of sizes and ints
    "full": lambda x, n: torch.full((n, 2), 1.0) + x.sum(),
    "arange": lambda x, n: torch.arange(n) * x.shape[0],
    "expand": lambda x, n: x[:1].expand(n, -1),
    "slice": lambda x, n: x[:, :n] + x[-n:, :1].sum(),
    "pad": lambda x, n: torch.nn.functional.pad(x, (0, n)),  # its meta function takes no symbols
    "interpolate": lambda x, n: torch.nn.functional.interpolate(x[None, None], size=(x.shape[0] * 2, 6)),
    "repeat": lambda x, n: x.repeat(n, 1),
    "narrow": lambda x, n: x.narrow(0, 0, x.shape[0] - 1),
    "unflatten": lambda x, n: x.flatten().unflatten(0, (x.shape[0], -1)),
    "view_star": lambda x, n: x.view(*x.shape[:-1], 2, -1),
    "max_min": lambda x, n: x.new_zeros(max(x.shape[0], n)) + min(n, 3) + abs(-n),
    "floordiv": lambda x, n: x.view(-1, x.shape[1] // 2, 2),
    "split": lambda x, n: torch.split(x, 2),
    "list_shape": lambda x, n: list(x.shape),
    "range_loop": lambda x, n: sum(x[i] for i in range(x.shape[0] - 1)),
    "sdpa": lambda x, n: torch.nn.functional.scaled_dot_product_attention(x[None], x[None], x[None]),
}


@pytest.mark.parametrize("dynamic", [True, None])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_size_programs_match_eager(name, dynamic, counter, no_warnings):
    program = PROGRAMS[name]
    compiled = kiln.compile(program, backend=counter, dynamic=dynamic)
    for rows, n in ((2, 2), (3, 3), (4, 5), (7, 4), (5, 2)):
        x = torch.randn(rows, 6)
        got, want = compiled(x, n), program(x, n)
        if isinstance(want, list) and not isinstance(want[0], torch.Tensor):
            assert got == want
        else:
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", ["full", "slice", "max_min", "view_star", "floordiv"])
def test_size_programs_stay_symbolic(name, counter):
    compiled = kiln.compile(PROGRAMS[name], backend=counter, dynamic=True)
    for rows, n in ((3, 2), (4, 3), (7, 5), (6, 4)):  # (n < rows throughout: x[-n:] guards on which)
        compiled(torch.randn(rows, 6), n)
    assert counter.count == 1


def test_specialised_size_is_guarded(counter, recompiles):
    def f(x):
        return x.new_zeros(int(x.shape[0]))  # int() of a size specialises it

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for rows in (3, 4, 3):
        torch.testing.assert_close(compiled(torch.randn(rows)), f(torch.randn(rows)))
    assert counter.count == 2
    assert "size guard failed: L['x'].size()[0] == 3" in recompiles.text


def test_guards_a_backend_adds_while_compiling_are_kept(recompiles):
    graphs = []

    def specialising_backend(gm, example_inputs):
        graphs.append(gm)
        for value in example_inputs:
            if isinstance(value, torch.SymInt):
                int(value)  # specialises the symbol in the shared ShapeEnv, as a back end may
        return gm.forward

    compiled = kiln.compile(scale_rows, backend=specialising_backend, dynamic=True)
    for rows in (3, 3, 4):
        x = torch.randn(rows, 5)
        torch.testing.assert_close(compiled(x), scale_rows(x))
    assert len(graphs) == 2
    assert "size guard failed: L['x'].size()[0] == 3" in recompiles.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_with_varying_batch(backend, counter):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    compiled = kiln.compile(model, backend=_backend(backend, counter))
    for batch in (2, 3, 5, 8):
        x = torch.randn(batch, 4)
        compiled(x).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        model(x).sum().backward()
        for got, want in zip(grads, (p.grad for p in model.parameters())):
            torch.testing.assert_close(got, want)
        model.zero_grad()
    if backend == "counter":
        assert counter.count == 2


@torch.library.custom_op("kiln_dynamic_test::static_only", mutates_args=())
def _static_only(x: torch.Tensor) -> torch.Tensor:
    return x * 3


@_static_only.register_fake
def _(x):
    if any(isinstance(size, torch.SymInt) for size in x.shape):
        raise RuntimeError("static_only takes no symbolic sizes")
    return torch.empty_like(x)


def test_frame_failing_on_symbols_compiles_static(counter, no_warnings, recompiles):
    def f(x):
        return torch.ops.kiln_dynamic_test.static_only(x) + 1

    compiled = kiln.compile(f, backend=counter, dynamic=True)
    for rows in (2, 3, 2):
        x = torch.randn(rows, 4)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count == 2 and not any(_symbols(gm) for gm in counter.graphs)
    assert "on symbolic sizes; compiling with static sizes" in recompiles.text


def test_shape_carried_across_a_break_stays_symbolic(counter):
    opaque = kiln.disable(_opaque)

    def f(x):
        input_shape = x.size()
        y = opaque(x + 1)  # graph break: input_shape reaches the resume function as a torch.Size
        return y.view(input_shape[:-1] + (2, -1)) * input_shape[0]

    compiled = kiln.compile(f, backend=counter)
    for rows in (3, 5, 6, 7, 9):
        x = torch.randn(rows, 4)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.count == 4  # each piece: static, then symbolic


def test_tiny_gpt2_varying_sequence_length(counter):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=64, n_positions=32, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2Model(config).eval()
    compiled = kiln.compile(model, backend=counter)
    with torch.no_grad():
        for seq in (5, 6, 7, 9, 12):
            ids = torch.randint(0, 64, (2, seq))
            torch.testing.assert_close(compiled(ids).last_hidden_state, model(ids).last_hidden_state)
            if seq == 6:
                after_two_lengths = counter.count
    assert counter.count == after_two_lengths  # symbolic after the second length: no more graphs


def test_inductor_compiles_a_symbolic_graph_once(no_warnings):
    """A backend that fakifies the inputs again (Inductor) finds the trace's fake mode and ShapeEnv
    in the TracingContext, as under TorchDynamo."""
    def f(x, n):
        b, t = x.shape
        return (x.view(b * t) * n).view(b, t).softmax(-1) + x.size(0)

    compiled = kiln.compile(f, backend="inductor", dynamic=True)
    for rows, n in ((3, 2), (5, 3), (8, 4)):
        x = torch.randn(rows, 6)
        torch.testing.assert_close(compiled(x, n), f(x, n))
    assert sum(1 for record in capture.compiled_records() if record.graph is not None) == 1
