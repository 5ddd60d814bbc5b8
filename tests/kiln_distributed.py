"""What each rank runs for tests/distributed/: 2 processes on loopback (gloo), started by `spawn`.

Every rank trains the compiled model and an eager twin (same initial weights, the rank's own
batches) side by side under the same torch.distributed wrapper, and compares losses, gradients
(after DDP's all-reduce / FSDP's reduce-scatter) and parameters at every step. A failure on any
rank fails the spawning test with that rank's traceback.
"""
import copy
import os
import socket
import sys
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

import kiln
from kiln import records
from kiln_entries import ENTRY_POINTS
from kiln_training import ADAMW, BUILDERS, STEPS, batch, compare_tensors, kiln_warnings

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world, port, fn, args):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)  # two ranks share the machine's cores
    kiln.config.strict = True  # any fallback raises on the rank
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()
    # Passed: leave without the interpreter's teardown. A rank once aborted there ("terminate called
    # without an active exception", a native thread still joinable at exit) after its checks passed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(fn, *args, world=WORLD):
    """Run fn(rank, world, *args) on `world` processes; re-raises the first rank's failure."""
    mp.spawn(_rank_main, args=(world, _free_port(), fn, args), nprocs=world, join=True)


class Unit(torch.nn.Module):
    """The MLP as one FSDP unit of user code (TorchDynamo runs torch.nn's own containers eagerly when
    FSDP wraps them)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _fsdp(module, entry):
    """FSDP2: each transformer block (GPT-2) or the whole network (the MLP) sharded with fully_shard
    and compiled on its own, then the root (with the loss) sharded."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    if not hasattr(module.model, "h"):
        module.model = Unit(module.model)
    model = module.model
    parent, names = (model.h, range(len(model.h))) if hasattr(model, "h") else (module, ["model"])
    for name in names:
        block = parent[name] if isinstance(name, int) else getattr(parent, name)
        fully_shard(block, mesh=mesh)
        if entry is not None:
            compiled = ENTRY_POINTS[entry](block)
            if isinstance(name, int):
                parent[name] = compiled
            else:
                setattr(parent, name, compiled)
    fully_shard(module, mesh=mesh)
    return module


def _full(value):
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def train(rank, world, wrapper, name, entry, ddp_kwargs=None):
    """5 AdamW steps of BUILDERS[name] under `wrapper` ("ddp" or "fsdp"), compiled through `entry`
    vs eager; returns nothing, raises on the first mismatch."""
    torch._dynamo.reset()
    kiln.capture.reset()
    records.clear()
    module, inputs, target = BUILDERS[name]()  # fixed seeds: the same weights on every rank
    module.train()
    twin = copy.deepcopy(module)
    if wrapper == "ddp":
        eager = DDP(module, **(ddp_kwargs or {}))
        wrapped = DDP(twin, **(ddp_kwargs or {}))
        compiled = ENTRY_POINTS[entry](wrapped)
    else:
        eager = _fsdp(module, None)
        wrapped = compiled = _fsdp(twin, entry)
    eager_opt = torch.optim.AdamW(eager.parameters(), **ADAMW)
    kiln_opt = torch.optim.AdamW(wrapped.parameters(), **ADAMW)
    for step in range(STEPS):
        xs, t = batch(step, inputs, target, seed=100 + 1000 * rank)  # each rank its own batches
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = []
            for model, opt in ((eager, eager_opt), (compiled, kiln_opt)):
                opt.zero_grad(set_to_none=True)
                loss = model(*copy.deepcopy(xs), t.clone())
                loss.backward()
                losses.append(loss.detach())
        assert not kiln_warnings(caught), kiln_warnings(caught)
        torch.testing.assert_close(losses[1], losses[0], msg=lambda m: f"rank {rank} step {step} loss: {m}")
        grads = [{str(i): _full(p.grad) for i, p in enumerate(m.parameters())} for m in (wrapped, eager)]
        compare_tensors(*grads, f"rank {rank} grad", step)
        eager_opt.step()
        kiln_opt.step()
        states = [{str(i): _full(p.detach()) for i, p in enumerate(m.parameters())} for m in (wrapped, eager)]
        compare_tensors(*states, f"rank {rank} parameter", step)
    backend = records.backend_records()
    assert backend and all(r.compiled for r in backend), [str(r) for r in backend]
    assert sum(r.kernels for r in backend) > 0


# -- collectives inside compiled functions ---------------------------------------------------------

def in_place_collectives(x):
    y = x * 2
    dist.all_reduce(y)
    gathered = torch.empty(x.shape[0] * dist.get_world_size(), *x.shape[1:])
    dist.all_gather_into_tensor(gathered, y + dist.get_rank())
    scattered = torch.empty(x.shape[0] // dist.get_world_size(), *x.shape[1:])
    dist.reduce_scatter_tensor(scattered, x.exp(), op=dist.ReduceOp.MAX)
    b = x.clone()
    dist.broadcast(b, src=1, group=dist.group.WORLD)
    return y + 1, gathered, scattered, b


def functional_collectives(x):
    import torch.distributed._functional_collectives as funcol

    reduced = funcol.all_reduce(x * 2, "sum", dist.group.WORLD)
    gathered = funcol.all_gather_tensor(x, 0, dist.group.WORLD)  # (renamed after torch 2.4: the old names)
    scattered = funcol.reduce_scatter_tensor(x, "avg", 0, dist.group.WORLD)
    return reduced + 1, gathered.sin(), scattered


def barrier_between(x):
    y = x + 1
    dist.barrier()
    return y * 2


# function -> graphs Kiln's capture makes of it (a barrier breaks the graph; collectives are traced)
COLLECTIVE_CASES = {in_place_collectives: 1, functional_collectives: 1, barrier_between: 2}


def collectives(rank, world, entry):
    kiln.config.strict = False  # the barrier's graph break is expected; warnings are checked below
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(rank))
    for fn, graphs in COLLECTIVE_CASES.items():
        torch._dynamo.reset()
        kiln.reset()
        expected = fn(x.clone())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = ENTRY_POINTS[entry](fn)(x.clone())
        assert not kiln_warnings(caught), kiln_warnings(caught)
        torch.testing.assert_close(got, expected, msg=lambda m: f"rank {rank} {fn.__name__}: {m}")
        if entry == "kiln.compile":
            captured = [r for r in kiln.capture.compiled_records() if r.graph is not None]
            assert len(captured) == graphs, (fn.__name__, captured)
        backend = records.backend_records()
        assert backend and all(r.compiled for r in backend), [str(r) for r in backend]
