"""Faults: SIGKILL at many points of a run then resume, failed checkpoint writes, damaged or foreign checkpoints,
read-only and shared output directories, non-finite gradients.

The kill points run `train_run` in a forked child (no interpreter start-up: a kill costs a fraction of a second)
that stops at an exact point -- mid-epoch, half-way through writing a file, mid-evaluation -- or at a random
time, and takes a real SIGKILL there. The directory must then hold nothing half-written under a final name, and
`--resume` (or `--overwrite`, when no checkpoint existed yet) must end with exactly the results, weights and
metrics of an uninterrupted run. tests/train/test_run.py kills real `graphcl train` processes as well.
"""
from __future__ import annotations

import errno
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest
import torch

from graphcl.config import load_config
from graphcl.data import make_synthetic_node_data
from graphcl.graph.methods.dgi import DGI
from graphcl.train import checkpoint
from graphcl.train.artifacts import read_encoder_file
from graphcl.train.checkpoint import CheckpointError, WriteError, load_torch
from graphcl.train.rundir import MetricsLog, RunDirError
from graphcl.train.run import train_run
from graphcl.train.tasks.node import NodeTask
from graphcl.train.trainer import NonFiniteLossError

REPO = Path(__file__).resolve().parents[2]
CORA = REPO / "configs" / "dgi" / "cora.yaml"
FORK = multiprocessing.get_context("fork")
DATA = make_synthetic_node_data(num_nodes=100)
# 2 seeds x 4 epochs of one step; checkpoints at epochs 2 and 4 and after each seed's evaluation: 6 writes
SETTINGS = ["model.method=dgi", "data.name=synthetic", "model.encoder.hidden_channels=8", "trainer.epochs=4",
            "trainer.checkpoint_every=2", "seeds=[0,1]", "trainer.patience=null", "trainer.progress=false",
            "trainer.device=cpu", "trainer.diagnostics_every=2", "eval.c_grid=[1.0]"]
CFG = load_config(None, SETTINGS)
RNG = random.Random(11)  # the "random" kill points, drawn once: the same points on every run of the suite


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """See `single_thread` in conftest.py."""


def train(run_dir: Path, mode: str = "new", cfg=CFG) -> dict:
    return train_run(None if mode == "resume" else cfg, run_dir, mode=mode, dataset=[DATA], log=lambda *_: None)


RUN_SECONDS = [1.0]  # how long the uninterrupted run took here: timed kills land at a fraction of it


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    start = time.perf_counter()
    train(out)
    RUN_SECONDS[0] = time.perf_counter() - start
    return out


# -- reading a run directory ---------------------------------------------------------------------------------
def metric_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob(".*.tmp"))


def assert_intact(run_dir: Path) -> None:
    """Every file under its final name is complete; only metrics.jsonl may end in a line cut short."""
    if (run_dir / "checkpoint.pt").exists():
        load_torch(run_dir / "checkpoint.pt", "checkpoint")
    if (run_dir / "encoder.pt").exists():
        read_encoder_file(run_dir)
    if (run_dir / "config.yaml").exists():
        load_config(run_dir / "config.yaml")
    for name in ("results.json", "env.json"):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())
    if (run_dir / "metrics.jsonl").exists():
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()[:-1]:
            json.loads(line)


def assert_same_run(run_dir: Path, reference: Path) -> None:
    got, want = (json.loads((d / "results.json").read_text()) for d in (run_dir, reference))
    for key in ("test", "val"):
        assert got[key]["per_seed"] == want[key]["per_seed"], key
    assert got["epochs"] == want["epochs"] == [4, 4]
    a, b = (torch.load(d / "encoder.pt", weights_only=False)["state_dicts"] for d in (run_dir, reference))
    assert len(a) == len(b) == 2
    for sa, sb in zip(a, b):
        assert all(torch.equal(sa[k], sb[k]) for k in sb), "encoder weights differ from the uninterrupted run"
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(metric_rows(run_dir)) == strip(metric_rows(reference))
    assert temporaries(run_dir) == [], "temporaries of interrupted writes must be cleaned up"
    assert not (run_dir / ".lock").exists()


# -- kill points ---------------------------------------------------------------------------------------------
def _stop_here(event) -> None:
    """Tell the parent the kill point is reached and wait for its SIGKILL."""
    event.set()
    time.sleep(120)
    os._exit(3)  # only if no kill came


def _install(point: tuple, event) -> None:
    """Patch, in the child only, the place where `point` stops the run."""
    kind = point[0]
    if kind == "step":  # before the n-th training step's loss: mid-epoch
        forward, calls = DGI.forward, [0]

        def step(self, batch):
            calls[0] += 1
            if calls[0] == point[1]:
                _stop_here(event)
            return forward(self, batch)

        DGI.forward = step
    elif kind == "write":  # half-way through the k-th write of a run file, before its rename
        real, name, k, calls = checkpoint.atomic_write, point[1], point[2], [0]

        def write(path, fill, mode="wb"):
            path = Path(path)
            if path.name == name:
                calls[0] += 1
                if calls[0] == k:
                    buffer = io.BytesIO() if "b" in mode else io.StringIO()
                    fill(buffer)
                    content = buffer.getvalue()
                    fd, _ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                    with os.fdopen(fd, mode) as f:
                        f.write(content[: len(content) // 2])
                        f.flush()
                        os.fsync(f.fileno())
                    _stop_here(event)
            return real(path, fill, mode)

        checkpoint.atomic_write = write
    elif kind == "metrics":  # half-way through the n-th line of metrics.jsonl
        real_write, calls = MetricsLog.write, [0]

        def log(self, row):
            calls[0] += 1
            if calls[0] == point[1]:
                with open(self.path, "a") as f:
                    line = json.dumps(row) + "\n"
                    f.write(line[: len(line) // 2])
                _stop_here(event)
            return real_write(self, row)

        MetricsLog.write = log
    elif kind == "eval":  # during the n-th seed's evaluation (after its training, before its checkpoint)
        evaluate, calls = NodeTask.evaluate, [0]

        def probe(self, encoder, seed):
            calls[0] += 1
            if calls[0] == point[1]:
                _stop_here(event)
            return evaluate(self, encoder, seed)

        NodeTask.evaluate = probe


def _child(run_dir: str, mode: str, point: tuple, event) -> None:
    _install(point, event)
    train(Path(run_dir), mode)


def run_and_kill(run_dir: Path, point: tuple, mode: str = "new") -> Optional[int]:
    """Run in a forked child until `point` (or ("time", f): after the fraction f of an uninterrupted run's time),
    SIGKILL it; the child's pid, or None when a timed kill came after the run had finished."""
    event = FORK.Event()
    proc = FORK.Process(target=_child, args=(str(run_dir), mode, point, event), daemon=True)
    proc.start()
    if point[0] == "time":
        proc.join(point[1] * RUN_SECONDS[0])
    else:
        assert event.wait(60), f"kill point {point} not reached (child exit code {proc.exitcode})"
    if proc.exitcode is not None:  # finished before the timed kill
        assert proc.exitcode == 0
        return None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    if point[0] == "time" and proc.exitcode == 0:  # it finished just before the kill
        return None
    assert proc.exitcode == -signal.SIGKILL
    return proc.pid


def recover(run_dir: Path) -> None:
    """What a user does after a crash: --resume; --overwrite when the run died before its first checkpoint."""
    if (run_dir / "checkpoint.pt").exists():
        train(run_dir, "resume")
        return
    with pytest.raises(RunDirError, match="no checkpoint.pt"):
        train(run_dir, "resume")
    if not (run_dir / "config.yaml").exists():  # a timed kill before the run had begun
        train(run_dir, "new")
        return
    with pytest.raises(RunDirError, match="already holds a run"):  # the directory is a run: never clobbered
        train(run_dir, "new")
    train(run_dir, "overwrite")


KILL_POINTS = {
    "step-1-before-any-checkpoint": ("step", 1),
    "step-3-mid-epoch": ("step", 3),
    "step-6-second-seed": ("step", 6),
    "checkpoint-write-1-no-previous": ("write", "checkpoint.pt", 1),
    "checkpoint-write-2": ("write", "checkpoint.pt", 2),
    "checkpoint-write-3-seed-done": ("write", "checkpoint.pt", 3),
    "metrics-line-5": ("metrics", 5),
    "evaluation-seed-0": ("eval", 1),
    "encoder-write": ("write", "encoder.pt", 1),
    "results-write": ("write", "results.json", 1),
    "random-step": ("step", RNG.randint(2, 8)),
    "random-checkpoint-write": ("write", "checkpoint.pt", RNG.randint(2, 6)),
    "random-time-a": ("time", RNG.uniform(0.05, 0.95)),
    "random-time-b": ("time", RNG.uniform(0.05, 0.95)),
}


@pytest.mark.parametrize("point", list(KILL_POINTS.values()), ids=list(KILL_POINTS))
def test_sigkill_then_resume_equals_uninterrupted(point: tuple, reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    pid = run_and_kill(run_dir, point)
    assert_intact(run_dir)
    if pid is not None and point[0] != "time":
        assert (run_dir / ".lock").read_text() == str(pid), "a killed run leaves a stale lock, which resume takes over"
        if point[0] == "write":
            assert temporaries(run_dir), "the kill came mid-write: its temporary is all that was left"
            if point[1] == "checkpoint.pt" and point[2] > 1:
                assert load_torch(run_dir / "checkpoint.pt", "checkpoint")  # the previous one, intact
    recover(run_dir)
    assert_same_run(run_dir, reference)


def test_killed_twice_then_resumed_equals_uninterrupted(reference: Path, tmp_path: Path) -> None:
    """Killed mid-epoch, then the resumed process killed mid-way through its first checkpoint write."""
    run_dir = tmp_path / "run"
    run_and_kill(run_dir, ("step", 4))
    epoch = load_torch(run_dir / "checkpoint.pt", "checkpoint")["current"]["epoch"]
    run_and_kill(run_dir, ("write", "checkpoint.pt", 1), mode="resume")
    assert_intact(run_dir)
    assert load_torch(run_dir / "checkpoint.pt", "checkpoint")["current"]["epoch"] == epoch
    train(run_dir, "resume")
    assert_same_run(run_dir, reference)


# -- a failing checkpoint write (disk full) ------------------------------------------------------------------
class FullDisk:
    """A file that takes `room` bytes, then fails like a full disk."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, b) -> int:
        if len(b) > self.room:
            self.f.write(bytes(b[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def fill_disk_on_checkpoint(monkeypatch: pytest.MonkeyPatch, which: int) -> None:
    """The `which`-th checkpoint write runs out of space after 2 KiB."""
    save, calls = torch.save, [0]

    def saving(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("kind") == "checkpoint":
            calls[0] += 1
            if calls[0] == which:
                return save(obj, FullDisk(f, 2048), *args, **kwargs)
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", saving)


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(monkeypatch: pytest.MonkeyPatch, reference: Path,
                                                               tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        fill_disk_on_checkpoint(patch, 2)
        with pytest.raises(WriteError) as info:
            train(run_dir)
    assert str(info.value) == (f"could not write {run_dir / 'checkpoint.pt'}: No space left on device; "
                               f"any previous checkpoint.pt is left as it was")
    assert info.value.errno == errno.ENOSPC
    ckpt = load_torch(run_dir / "checkpoint.pt", "checkpoint")
    assert ckpt["current"]["epoch"] == 2, "the checkpoint of epoch 2 must survive the failed write of epoch 4"
    assert temporaries(run_dir) == [] and not (run_dir / ".lock").exists()
    train(run_dir, "resume")  # space freed: the run continues from epoch 2
    assert_same_run(run_dir, reference)


def test_failed_checkpoint_write_exits_1_naming_the_file(graphcl_cli, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    fill_disk_on_checkpoint(monkeypatch, 2)
    code, _, err = graphcl_cli("train", CORA, "trainer.epochs=3", "trainer.checkpoint_every=1", "seeds=[0]",
                               "trainer.patience=null", "model.encoder.hidden_channels=8", "trainer.progress=false",
                               "trainer.device=cpu", "--out", run_dir)
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"graphcl: error: could not write {run_dir / 'checkpoint.pt'}: "
                                        f"No space left on device; any previous checkpoint.pt is left as it was"]
    assert load_torch(run_dir / "checkpoint.pt", "checkpoint")["current"]["epoch"] == 1


# -- damaged or foreign checkpoints ---------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bits(path: Path) -> None:
    """Invert 64 bytes in the middle of the file: tensor data, which torch.load alone would read as numbers."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated": (_truncate, "corrupted or truncated checkpoint file"),
    "bits-flipped": (_flip_bits, "corrupted or truncated checkpoint file"),
    "empty": (lambda p: p.write_bytes(b""), "corrupted or truncated checkpoint file"),
    "encoder-file": (lambda p: shutil.copy(p.parent / "encoder.pt", p), "is not a graphcl checkpoint file"),
}


@pytest.mark.parametrize("damage, message", list(DAMAGE.values()), ids=list(DAMAGE))
def test_damaged_checkpoint_exits_2_naming_the_file(damage, message: str, graphcl_cli, reference: Path,
                                                    tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    damage(run_dir / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, _, err = graphcl_cli("train", "--resume", run_dir)
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(run_dir / "checkpoint.pt") in lines[0], err
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert after == before, "a refused resume must leave the run directory as it was"
    with pytest.raises(CheckpointError, match=message):
        train(run_dir, "resume")


def test_checkpoint_of_another_method_is_refused(graphcl_cli, reference: Path, tmp_path: Path) -> None:
    other = tmp_path / "grace"
    train(other, cfg=load_config(None, [*SETTINGS, "model.method=grace", "seeds=[0]", "trainer.epochs=2"]))
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    shutil.copy(other / "checkpoint.pt", run_dir / "checkpoint.pt")
    code, _, err = graphcl_cli("train", "--resume", run_dir)
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines() == [
        f"graphcl: error: {run_dir / 'checkpoint.pt'} was written by a run with model.method 'grace', but "
        f"{run_dir / 'config.yaml'} has model.method 'dgi': it is another run's checkpoint; put this run's own "
        f"checkpoint back, or start again with --overwrite"]
    assert load_config(run_dir / "config.yaml").model.method == "dgi", "config.yaml must not be rewritten"


# -- output directories --------------------------------------------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder nobody may write to. As root, where chmod stops nothing, the kernel's answers for this folder
    are made those a normal user gets: no write access, EACCES on creating files or folders in it."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        def inside(path) -> bool:
            return Path(os.path.abspath(path)).is_relative_to(folder)

        access, open_, mkdir = os.access, os.open, Path.mkdir
        monkeypatch.setattr(os, "access", lambda p, m, *a, **k: (not (m & os.W_OK) and access(p, m, *a, **k))
                            if inside(p) else access(p, m, *a, **k))

        def opening(path, flags, *args, **kwargs):
            if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return open_(path, flags, *args, **kwargs)

        def making(self, *args, **kwargs):
            if inside(self) and not self.exists():
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return mkdir(self, *args, **kwargs)

        monkeypatch.setattr(os, "open", opening)
        monkeypatch.setattr(Path, "mkdir", making)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("where", ["the-folder", "inside"])
def test_read_only_output_directory_exits_2(where: str, read_only_dir: Path, graphcl_cli) -> None:
    out = read_only_dir if where == "the-folder" else read_only_dir / "run"
    code, _, err = graphcl_cli("train", CORA, "trainer.epochs=1", "seeds=[0]", "--out", out)
    assert code == 2 and "Traceback" not in err, err
    want = (f"output directory {out} is not writable" if where == "the-folder"
            else f"cannot create output directory {out}: Permission denied")
    assert err.strip().splitlines() == [f"graphcl: error: {want}"]
    assert list(read_only_dir.iterdir()) == []


def test_two_runs_on_one_directory_cannot_interleave(reference: Path, tmp_path: Path) -> None:
    """A live run holds the directory: a second run (even --overwrite, even --resume) is refused, touching nothing."""
    run_dir = tmp_path / "run"
    event = FORK.Event()
    proc = FORK.Process(target=_child, args=(str(run_dir), "new", ("step", 4), event), daemon=True)
    proc.start()
    try:
        assert event.wait(60)
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
        for mode in ("overwrite", "resume"):
            with pytest.raises(RunDirError, match=rf"run directory {run_dir} is in use by process {proc.pid} "
                                                  rf"\(lock file {run_dir / '.lock'}\)"):
                train(run_dir, mode)
        assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    train(run_dir, "resume")
    assert_same_run(run_dir, reference)


# -- numerical guards ----------------------------------------------------------------------------------------
def test_nonfinite_gradient_stops_naming_parameter_epoch_and_step(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    forward, calls = DGI.forward, [0]

    def nan_gradient(self, batch):  # at the 3rd step: a finite loss whose gradient is NaN (sqrt at 0, times 0)
        calls[0] += 1
        loss = forward(self, batch)
        return loss + torch.sqrt(self.discriminator.weight.abs().sum() * 0) if calls[0] == 3 else loss

    monkeypatch.setattr(DGI, "forward", nan_gradient)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"^non-finite gradient of discriminator\.weight at epoch 3, "
                                                 r"step 1, loss \d\.\d+$"):
        train(run_dir)
    ckpt = load_torch(run_dir / "checkpoint.pt", "checkpoint")
    assert ckpt["current"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["current"]["method"].values())
    assert not (run_dir / ".lock").exists()


def test_nonfinite_loss_reports_the_loss_terms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A method that records its loss terms (`last_terms`) has them in the message."""
    forward = DGI.forward

    def diverging(self, batch):
        self.last_terms = {"positive": 0.5, "negative": float("inf")}
        return forward(self, batch) * float("inf")

    monkeypatch.setattr(DGI, "forward", diverging)
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss inf at epoch 1, step 1, "
                                                 r"terms \{'positive': 0\.5, 'negative': inf\}$"):
        train(tmp_path / "run")
