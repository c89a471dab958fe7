"""Atomic, verifiable writes of run files: nothing half-written is ever left under its final name."""
from __future__ import annotations

import glob
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint or encoder file that cannot be used (missing, truncated, corrupted, wrong kind)."""


class WriteError(OSError):
    """A run file could not be written (disk full, quota, read-only); the previous version of it is untouched.

    Built as `OSError(errno, strerror, filename)`; `filename` is the file that could not be written."""

    @classmethod
    def of(cls, path: Path, cause: OSError) -> "WriteError":
        return cls(cause.errno, cause.strerror or str(cause), str(path))

    def __str__(self) -> str:
        return (f"could not write {self.filename}: {self.strerror}; "
                f"any previous {Path(self.filename).name} is left as it was")


def temporary_files(folder: str | os.PathLike, name: str) -> list[Path]:
    """The temporaries `atomic_write` (and `save_config`) make for `folder/name`: `.{name}.*.tmp`."""
    return sorted(Path(folder).glob(f".{glob.escape(name)}.*.tmp"))


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write `path` through a temporary file in the same directory, fsync, then `os.replace`.

    A crash or a failing write (disk full) leaves the previous file untouched; a failing write raises
    `WriteError` naming `path`. A SIGKILL can leave the temporary behind (`temporary_files`), never a half file
    under `path`.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError.of(path, e) from e
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(e) if isinstance(e, Exception) else None
        if cause is None:
            raise
        raise WriteError.of(path, cause) from e


def _os_error(e: BaseException) -> OSError | None:
    """The OSError behind `e` (itself, or what it was raised from or during: torch.save reports a failed write
    as a RuntimeError raised while handling the OSError), else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def save_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"), mode="w")


def load_torch(path: str | os.PathLike, kind: str) -> dict:
    """Load a graphcl file of `kind` ('checkpoint' or 'encoder') with a one-line error when unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{kind} file not found: {path}")
    # torch.load does not check the CRC-32 of what it reads: a damaged tensor would load as wrong numbers
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except Exception as e:  # not a zip archive (truncated: no central directory), a broken header, ...
        raise CheckpointError(f"corrupted or truncated {kind} file {path}: {type(e).__name__}: {e}") from None
    if damaged is not None:
        raise CheckpointError(f"corrupted or truncated {kind} file {path}: record {damaged} fails its CRC-32 check")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, ...
        raise CheckpointError(f"corrupted or truncated {kind} file {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        raise CheckpointError(f"{path} is not a graphcl {kind} file")
    return obj


def check_same_run(checkpoint_config: dict, config_file: str | os.PathLike,
                   checkpoint_file: str | os.PathLike) -> None:
    """Refuse to resume from another run's checkpoint: one whose method or dataset differ from those of the run
    directory's `config.yaml` (a checkpoint copied over from elsewhere). Without a readable config.yaml there is
    nothing to compare."""
    import yaml

    try:
        saved = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    if not isinstance(saved, dict):
        return
    for section, key in (("model", "method"), ("data", "name")):
        ours = (saved.get(section) or {}).get(key)
        theirs = (checkpoint_config.get(section) or {}).get(key)
        if ours is not None and str(ours).lower() != str(theirs).lower():
            raise CheckpointError(f"{checkpoint_file} was written by a run with {section}.{key} {theirs!r}, but "
                                  f"{config_file} has {section}.{key} {ours!r}: it is another run's checkpoint; "
                                  f"put this run's own checkpoint back, or start again with --overwrite")


def rng_state() -> dict:
    """Every RNG a run draws from, to make a resumed run continue exactly."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
