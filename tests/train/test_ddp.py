"""Training with several processes (DDP, 2 gloo processes on CPU) against one process on the same global batches.

Every equivalence test runs the real pieces: the task's `batches()` (sharded per rank), `Trainer` (which wraps the
method in DistributedDataParallel with batch norms over the global batch) and the method's own gathers. Models and
inputs are float64, so "equal within 1e-5" has room to spare (the two set-ups differ only in summation order).

Views are random in real runs, and each rank draws its own (`own_view_stream`), so random views could never
match one process. These tests replace them by deterministic views: GraphCL masks the features of every third
node of each graph (a function of the graph alone, so the same whichever rank holds the graph); the image methods
see the images, their mirror image inverted and, for SwAV, a centre crop as the local view.
"""
from __future__ import annotations

import copy
import gc
import itertools
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn

from graphcl.config import load_config
from graphcl.train.build import build_optimizer
from graphcl.train.checkpoint import seed_everything
from graphcl.train.tasks import get_task
from graphcl.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
MUTAG = REPO / "configs" / "graphcl" / "mutag.yaml"
WORLD = 2
CPU = torch.device("cpu")
DATA = os.environ.get("GRAPHCL_DATA") or str(REPO.parent / "shared" / "datasets")


# -- deterministic views -----------------------------------------------------------------------------------------
class MaskEveryThirdNode(nn.Module):
    """GraphCL's second view for these tests: the features of nodes 0, 3, 6, ... of every graph set to zero."""

    def forward(self, batch):
        position = torch.arange(batch.num_nodes) - batch.ptr[batch.batch]
        view = copy.copy(batch)
        view.x = batch.x * (position % 3 != 0).unsqueeze(1)
        return view


class FixedImageViews:
    """Two global views (the images; their mirror image, inverted) and `num_local` 4 x 4 centre crops."""

    num_global = 2

    def __init__(self, num_local: int = 0) -> None:
        self.num_local = num_local

    def __call__(self, x: Tensor) -> list[Tensor]:
        x = x.double()
        return [x, 1 - x.flip(-1)] + [x[..., 2:6, 2:6]] * self.num_local


# -- one training run, in one process or on every rank -----------------------------------------------------------
@contextmanager
def float64():
    """torch's default dtype float64 inside (the GIN's sparse adjacency is built in the default dtype). Datasets
    are loaded outside it: a dataset first processed inside would be cached in float64 for later runs."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def graphcl_steps() -> dict:
    """5 optimisation steps of GraphCL on MUTAG (188 graphs in batches of 38: 4 x 38 + 36)."""
    cfg = load_config(MUTAG, ["data.batch_size=38", "seeds=[0]", "trainer.epochs=1", f"data.root={DATA}"])
    task = get_task(cfg, CPU)
    task.graphs.x = task.graphs.x.double()
    with float64():
        return _train_graphcl(cfg, task)


def _train_graphcl(cfg, task) -> dict:
    seed_everything(0)
    method = task.build_method().double()
    method.augment = MaskEveryThirdNode()
    nodes = []

    def batches():
        for batch in task.batches():
            nodes.append(batch.num_nodes)
            yield batch

    trainer = Trainer(method, build_optimizer(cfg, method.parameters()), batches, epochs=1, device=CPU, amp=False,
                      progress=False)
    fit = trainer.fit()
    return {"state": method.state_dict(), "steps": trainer.step, "nodes": nodes, "loss": fit.best_loss}


IMAGE_SETTINGS = ["data.name=digits", f"data.root={DATA}", "data.batch_size=16", "model.encoder.name=convnet",
                  "model.encoder.hidden_channels=4", "model.heads.projector_hidden=16", "model.heads.projector_out=8",
                  "optim.name=adam", "optim.lr=0.01", "seeds=[0]"]
IMAGE_METHODS = {
    "simclr": [],
    "moco": ["model.params.queue_size=40", "model.params.momentum=0.9"],
    "swav": ["model.params.num_prototypes=6", "model.params.freeze_prototypes_epochs=0.025"],  # 2 frozen steps
    "vicreg": [],
}


def image_steps(name: str) -> dict:
    """4 optimisation steps of an image method on digits, global batches of 16 images."""
    cfg = load_config(None, [*IMAGE_SETTINGS, f"model.method={name}", *IMAGE_METHODS[name]])
    task = get_task(cfg, CPU)
    with float64():
        return _train_image_method(name, cfg, task)


def _train_image_method(name: str, cfg, task) -> dict:
    seed_everything(0)
    method = task.build_method().double()
    method.views = FixedImageViews(num_local=1 if name == "swav" else 0)
    if name == "moco":
        # A full queue from the start: with an empty queue MoCo's first step falls back to in-batch negatives,
        # which are each rank's own keys, not the global batch's (documented in docs/cli.md).
        keys = torch.randn(40, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        method.queue.enqueue(F.normalize(keys, dim=1))
    trainer = Trainer(method, build_optimizer(cfg, method.parameters()), lambda: itertools.islice(task.batches(), 4),
                      epochs=1, device=CPU, amp=False, progress=False)
    trainer.fit()
    return {"state": method.state_dict(), "steps": trainer.step}


def batch_norm_gradients() -> dict:
    """CrossRankBatchNorm on rank shares of sizes (3, 4) and (7, 0) of one input: outputs, gradients, statistics."""
    from graphcl.core.distributed import CrossRankBatchNorm, rank, world_size

    out = {}
    for sizes in [(3, 4), (7, 0)]:
        x = torch.randn(sum(sizes), 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        w = torch.randn_like(x, generator=torch.Generator().manual_seed(3))
        start = sum(sizes[:rank()]) if world_size() > 1 else 0
        stop = start + sizes[rank()] if world_size() > 1 else len(x)
        bn = CrossRankBatchNorm(3, momentum=0.3).double()
        bn.weight.data.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(4))
        part = x[start:stop].clone().requires_grad_()
        y = bn(part)
        (y * w[start:stop]).sum().backward()
        out[sizes] = {"y": y.detach(), "grad": part.grad, "weight_grad": bn.weight.grad, "bias_grad": bn.bias.grad,
                      "running": (bn.running_mean, bn.running_var), "slice": (start, stop)}
    return out


JOBS = {"graphcl": graphcl_steps, "images": lambda: {m: image_steps(m) for m in IMAGE_METHODS},
        "batch_norm": batch_norm_gradients}


def _worker(rank_: int, init_method: str, job: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank_, world_size=WORLD,
                            timeout=timedelta(seconds=60))
    try:
        torch.save(JOBS[job](), Path(out_dir) / f"rank{rank_}.pt")
        gc.collect()  # DDP wrappers freed while the group lives (train.distributed.process_group_from_env)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def on_two_ranks(job: str, tmp_path: Path) -> list[dict]:
    mp.spawn(_worker, args=(f"file://{tmp_path / 'group'}", job, str(tmp_path)), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def assert_same_state(got: dict, want: dict, what: str, atol: float = 1e-5) -> None:
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=atol, msg=lambda m: f"{what} {key}: {m}")


# -- tests -------------------------------------------------------------------------------------------------------
def test_cross_rank_batch_norm_matches_batch_norm_on_the_whole_batch(tmp_path, single_thread):
    ranks = on_two_ranks("batch_norm", tmp_path)
    for sizes, _ in ranks[0].items():
        x = torch.randn(sum(sizes), 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        w = torch.randn_like(x, generator=torch.Generator().manual_seed(3))
        bn = nn.BatchNorm1d(3, momentum=0.3).double()
        bn.weight.data.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(4))
        x.requires_grad_()
        y = bn(x)
        (y * w).sum().backward()
        for got in (r[sizes] for r in ranks):
            part = slice(*got["slice"])
            torch.testing.assert_close(got["y"], y.detach()[part], rtol=0, atol=1e-12)
            torch.testing.assert_close(got["grad"], x.grad[part], rtol=0, atol=1e-12)
            # each rank's parameter gradient is its share; DDP's average times 2 ranks is the whole
            for name, ref in (("weight_grad", bn.weight.grad), ("bias_grad", bn.bias.grad)):
                total = ranks[0][sizes][name] + ranks[1][sizes][name]
                torch.testing.assert_close(total, ref, rtol=0, atol=1e-12)
            torch.testing.assert_close(got["running"][0], bn.running_mean, rtol=0, atol=1e-12)
            torch.testing.assert_close(got["running"][1], bn.running_var, rtol=0, atol=1e-12)


def test_graphcl_on_mutag_two_processes_match_one(tmp_path, single_thread):
    reference = graphcl_steps()
    ranks = on_two_ranks("graphcl", tmp_path)
    assert reference["steps"] == 5 and all(r["steps"] == 5 for r in ranks)
    # each rank held half the graphs of every global batch, with different node counts
    assert [a + b for a, b in zip(ranks[0]["nodes"], ranks[1]["nodes"])] == reference["nodes"]
    assert ranks[0]["nodes"] != ranks[1]["nodes"]
    for r, got in enumerate(ranks):
        # parameters, and the batch-norm running statistics (global-batch statistics: synchronised)
        assert_same_state(got["state"], reference["state"], f"rank {r}")
        assert abs(got["loss"] - reference["loss"]) < 1e-8
    assert any("running_mean" in k for k in reference["state"])
    moved = max((reference["state"][k] - v).abs().max() for k, v in graphcl_initial_state().items())
    assert moved > 1e-3  # 5 steps changed the parameters, so the comparison says something


def graphcl_initial_state() -> dict:
    cfg = load_config(MUTAG, ["seeds=[0]", f"data.root={DATA}"])
    task = get_task(cfg, CPU)
    with float64():
        seed_everything(0)
        return task.build_method().state_dict()


def test_image_methods_two_processes_match_one(tmp_path, single_thread):
    reference = {m: image_steps(m) for m in IMAGE_METHODS}
    ranks = on_two_ranks("images", tmp_path)
    for method, want in reference.items():
        assert want["steps"] == 4
        for r, got in enumerate(ranks):
            assert_same_state(got[method]["state"], want["state"], f"{method} rank {r}")
    queue = [r["moco"]["state"]["queue.queue"] for r in ranks]
    assert torch.equal(queue[0], queue[1])  # every rank enqueued the gathered keys of the global batch
    assert int(ranks[0]["moco"]["state"]["queue.ptr"]) == (4 * 16) % 40
    # SwAV's prototypes were frozen for 2 steps, then trained: DDP handled the parameter it skipped
    trained = reference["swav"]["state"]["prototypes.weight"] - _initial("swav")["prototypes.weight"]
    assert trained.abs().max() > 1e-4


def _initial(name: str) -> dict:
    cfg = load_config(None, [*IMAGE_SETTINGS, f"model.method={name}", *IMAGE_METHODS[name]])
    task = get_task(cfg, CPU)
    with float64():
        seed_everything(0)
        method = task.build_method()
    return {k: F.normalize(v, dim=1) if k == "prototypes.weight" else v for k, v in method.state_dict().items()}


# -- runs ---------------------------------------------------------------------------------------------------------
RUN = ["trainer.epochs=2", "seeds=[0]", "trainer.diagnostics_every=0", "eval.c_grid=[1.0]", "eval.folds=3"]


def test_torchrun_trains_one_run_directory(tmp_path, graphcl_env):
    """`torchrun --nproc_per_node=2 -m graphcl train`: one run directory, written by rank 0, printed once."""
    env = {**graphcl_env, "GRAPHCL_DIST_TIMEOUT": "60"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "graphcl",
           "train", str(MUTAG), *RUN, "--out", "run"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("GRAPHCL on MUTAG") == 1 and done.stdout.count("seed 0:") == 1, done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no other rank made a directory
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.yaml", "encoder.pt", "env.json",
                                                     "metrics.jsonl", "results.json"]  # no lock, no temporaries
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2 and results["method"] == "graphcl" and 0 < results["test"]["mean"] <= 100
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and losses[1] < losses[0]
    from graphcl.train.artifacts import load_encoder

    assert load_encoder(run) is not None  # a valid encoder.pt


def test_sampled_grace_on_cora_trains_under_two_processes(tmp_path, graphcl_env):
    """Neighbour-sampled GRACE (`data.loader=neighbor`) under torchrun: every rank steps through as many sampled
    batches, the run completes and its loss falls. (NodeTask does not split the seed nodes between ranks: each
    rank samples its own shuffled pass over all of them; see the report of this change.)"""
    settings = ["data.loader=neighbor", "data.batch_size=256", "data.num_neighbors=[5,5]", "trainer.epochs=3",
                "seeds=[0]", "trainer.diagnostics_every=0", "trainer.patience=null", "eval.c_grid=[1.0]",
                "model.encoder.hidden_channels=64", "model.encoder.out_channels=32", "model.params.proj_hidden=32",
                "optim.lr=0.005"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "graphcl",
           "train", str(REPO / "configs" / "grace" / "cora.yaml"), *settings, "--out", "run"]
    done = subprocess.run(cmd, cwd=tmp_path, env={**graphcl_env, "GRAPHCL_DIST_TIMEOUT": "60"},
                          capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["world_size"] == 2 and results["epochs"] == [3]
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]


def _failing_worker(rank_: int, init_method: str, out_dir: str, report: str, how: str) -> None:
    """A 2-rank `train_run` in which rank 1, at its third batch, raises or hangs; records how each rank ended."""
    from graphcl.train.run import train_run
    from graphcl.train.tasks.graph import GraphTask

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank_, world_size=WORLD,
                            timeout=timedelta(seconds=TIMEOUT))
    batches = GraphTask.batches

    def failing(self):
        for i, batch in enumerate(batches(self)):
            if rank_ == 1 and i == 2:
                if how == "hangs":
                    time.sleep(300)  # the test kills it
                raise RuntimeError("injected failure on rank 1")
            yield batch

    GraphTask.batches = failing
    outcome = "finished"
    try:
        cfg = load_config(MUTAG, [*RUN, f"data.root={DATA}", "data.batch_size=38", "trainer.checkpoint_every=1"])
        train_run(cfg, out_dir, log=lambda *_: None)
    except Exception as e:
        outcome = f"{type(e).__name__}: {e}"
    finally:
        Path(report, f"rank{rank_}.txt").write_text(outcome)
        gc.collect()
        dist.destroy_process_group()


TIMEOUT = 10  # seconds a collective may wait


@pytest.mark.parametrize("how", ["raises", "hangs"])
def test_a_failing_rank_stops_the_others(tmp_path, how):
    """Rank 1 fails mid-epoch (an exception, or a hang): rank 0 must not wait forever (a closed connection, or
    the collective timeout, stops it), and the run directory holds no results and no half-written file.
    (mp.spawn would kill rank 0 itself and hide a hang: plain processes here.)"""
    ctx = mp.get_context("spawn")
    out, report = tmp_path / "run", tmp_path
    procs = [ctx.Process(target=_failing_worker, args=(r, f"file://{tmp_path / 'group'}", str(out), str(report), how))
             for r in range(WORLD)]
    for p in procs:
        p.start()
    procs[0].join(timeout=60)
    rank0_alive = procs[0].is_alive()
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join()
    assert not rank0_alive, f"rank 0 still waits for its peer that {how}"
    outcome = (report / "rank0.txt").read_text()
    assert outcome != "finished", outcome
    if how == "raises":
        assert (report / "rank1.txt").read_text() == "RuntimeError: injected failure on rank 1"
    names = sorted(p.name for p in out.iterdir())
    assert "results.json" not in names and "encoder.pt" not in names and ".lock" not in names, names
    assert not [n for n in names if n.endswith(".tmp")], names


def test_sync_batch_norm_keeps_the_parameters_and_is_batch_norm_on_one_process():
    """The conversion swaps PyG's inner BatchNorm1d for CrossRankBatchNorm, keeping the Parameter objects (an
    optimiser built before still trains them); without a process group the layer is plain batch norm."""
    from torch_geometric.nn.models import GIN

    from graphcl.core.distributed import CrossRankBatchNorm, sync_batch_norm

    torch.manual_seed(0)
    gin = GIN(5, 8, num_layers=2, norm="batch_norm")
    reference = copy.deepcopy(gin)
    params = list(gin.parameters())
    assert sync_batch_norm(gin) is gin
    assert [id(p) for p in gin.parameters()] == [id(p) for p in params]
    norms = [m for m in gin.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(type(m) is CrossRankBatchNorm for m in norms)
    x, edge_index = torch.randn(6, 5), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    torch.testing.assert_close(gin(x, edge_index), reference(x, edge_index), rtol=0, atol=0)
    assert torch.equal(norms[0].running_mean, next(m for m in reference.modules()
                                                   if isinstance(m, nn.BatchNorm1d)).running_mean)
