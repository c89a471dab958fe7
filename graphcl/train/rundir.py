"""The run directory: exclusive lock, overwrite policy, and the per-epoch `metrics.jsonl` log."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Optional

ARTIFACTS = ("config.yaml", "metrics.jsonl", "results.json", "checkpoint.pt", "encoder.pt", "env.json")


class RunDirError(RuntimeError):
    """The output directory cannot be used as asked (holds a run, locked, not writable)."""


class RunDir:
    """`with RunDir(path, mode) as run:` — mode "new" (refuse a directory that holds a run),
    "overwrite" (replace the run's artifacts) or "resume" (require a checkpoint)."""

    def __init__(self, path: str | os.PathLike, mode: str = "new") -> None:
        self.path = Path(path)
        self.mode = mode
        self._locked = False

    def file(self, name: str) -> Path:
        return self.path / name

    def __enter__(self) -> "RunDir":
        holds_run = any(self.file(a).exists() for a in ("config.yaml", "checkpoint.pt"))
        if self.mode == "resume" and not self.file("checkpoint.pt").exists():
            raise RunDirError(f"cannot resume: no checkpoint.pt in {self.path}")
        if self.mode == "new" and holds_run:
            raise RunDirError(f"output directory {self.path} already holds a run; "
                              "pass --overwrite to replace it or --resume to continue it")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create output directory {self.path}: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise RunDirError(f"output directory {self.path} is not writable")
        self._lock()
        for name in ARTIFACTS:  # temporaries of atomic writes a kill cut short (`checkpoint.temporary_files`)
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)
        if self.mode == "overwrite":
            for name in ARTIFACTS:
                self.file(name).unlink(missing_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._locked:
            self.file(".lock").unlink(missing_ok=True)
            self._locked = False

    def _lock(self) -> None:
        lock = self.file(".lock")
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = _read_pid(lock)
                if pid is not None and _alive(pid):
                    raise RunDirError(f"run directory {self.path} is in use by process {pid} "
                                      f"(lock file {lock}); wait for it or remove the lock") from None
                lock.unlink(missing_ok=True)  # stale: its process died (e.g. SIGKILL)
                continue
            except OSError as e:
                raise RunDirError(f"cannot write to output directory {self.path}: {e.strerror}") from None
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self._locked = True
            return
        raise RunDirError(f"could not take the lock {lock}")


def _read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricsLog:
    """Append-only JSON lines, one per epoch; TensorBoard scalars too when tensorboard is installed."""

    def __init__(self, path: Path, tensorboard_dir: Optional[Path] = None) -> None:
        self.path = path
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass
            else:
                self.writer = SummaryWriter(str(tensorboard_dir))

    def keep(self, predicate: Callable[[dict], bool]) -> None:
        """Drop lines the resumed state has not reached (and a line cut short by a kill)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if predicate(row):
                kept.append(line)
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None and "epoch" in row:
            tag = f"seed{row.get('seed', 0)}"
            for key, value in row.items():
                if isinstance(value, float):
                    self.writer.add_scalar(f"{tag}/{key}", value, row["epoch"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
