"""Atomic, verifiable writes of run files: nothing half-written is ever left under its final name."""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint or encoder file that cannot be used (missing, truncated, corrupted, wrong kind)."""


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write `path` through a temporary file in the same directory, fsync, then `os.replace`.

    A crash or a failing write (disk full) leaves the previous file untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def save_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"), mode="w")


def load_torch(path: str | os.PathLike, kind: str) -> dict:
    """Load a graphcl file of `kind` ('checkpoint' or 'encoder') with a one-line error when unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{kind} file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, ...
        raise CheckpointError(f"corrupted or truncated {kind} file {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        raise CheckpointError(f"{path} is not a graphcl {kind} file")
    return obj


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
