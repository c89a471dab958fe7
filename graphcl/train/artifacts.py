"""Run artifacts that outlive graphcl's trainer: `encoder.pt` (read by `load_encoder`) and `env.json`."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

import graphcl
from graphcl.train.checkpoint import CheckpointError, load_torch, save_json, save_torch

ENCODER_FORMAT = 1  # bump when the layout of encoder.pt changes; older layouts stay readable
# The names a method's or task's `encoder_builder` may give, as lazy "module:function" strings.
BUILDERS = {
    "graph": "graphcl.graph.encoders:build_encoder",
    "mvgrl": "graphcl.graph.methods.mvgrl:mvgrl_encoder",
    "mvgrl_graph": "graphcl.graph.methods.mvgrl_graph:mvgrl_graph_encoder",
    "sequence": "graphcl.sequence.encoders:build_sequence_encoder",
    "vision": "graphcl.vision.backbones:build_backbone",
}


def builder(name: str):
    """The encoder builder registered as `name` (a lazy "module:function" string or the function itself)."""
    from graphcl.core.lazy import resolve

    found = BUILDERS[name]
    return resolve(found) if isinstance(found, str) else found


def save_encoder(path: str | os.PathLike, spec: dict[str, Any], states: list[dict], seeds: list[int],
                 meta: Optional[dict] = None, builder: str = "graph") -> None:
    """One file for all seeds of a run: the builder's keyword arguments and one state dict per seed."""
    save_torch({
        "kind": "encoder",
        "format": ENCODER_FORMAT,
        "graphcl_version": graphcl.__version__,
        "builder": builder,
        "spec": spec,
        "seeds": list(seeds),
        "state_dicts": [{k: v.detach().cpu() for k, v in s.items()} for s in states],
        **(meta or {}),
    }, path)


def read_encoder_file(path: str | os.PathLike) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "encoder.pt"
    obj = load_torch(path, "encoder")
    if obj.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{path} has encoder format {obj.get('format')!r}; this graphcl "
                              f"({graphcl.__version__}) reads format {ENCODER_FORMAT}")
    if obj.get("builder") not in BUILDERS:
        raise CheckpointError(f"{path} needs unknown encoder builder {obj.get('builder')!r}")
    return obj


def encoder_from_file(obj: dict, seed: Optional[int] = None) -> nn.Module:
    """Rebuild the encoder of `seed` (default: the run's first seed) from a read `encoder.pt`."""
    seeds = obj["seeds"]
    if seed is None:
        seed = seeds[0]
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in this run's seeds {seeds}")
    module = builder(obj["builder"])(**obj["spec"])
    module.load_state_dict(obj["state_dicts"][seeds.index(seed)])
    return module.eval()


def load_encoder(path: str | os.PathLike, seed: Optional[int] = None,
                 map_location: str | torch.device = "cpu") -> nn.Module:
    """The trained encoder of a run (a run directory or its `encoder.pt`) as the plain PyG module it is.

    `seed` picks one of the run's pretraining seeds (default: the first). The module is in eval mode.
    """
    return encoder_from_file(read_encoder_file(path), seed).to(map_location)


def environment() -> dict[str, Any]:
    """Versions, device and git commit, for `env.json`."""
    import torch_geometric

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "graphcl": graphcl.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "num_threads": torch.get_num_threads(),
        "git_commit": commit,
    }


def write_environment(path: str | os.PathLike, device: torch.device) -> None:
    save_json({**environment(), "device": str(device)}, path)
