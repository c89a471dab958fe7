"""Tasks: what a run needs from one kind of data, so the run loop itself is modality-free.

A method class names its task with a `task` class attribute ("node" when absent). `train_run` then does:

    task = get_task(cfg, device)            # loads the data once per run
    method = task.build_method()            # per seed, after seeding; `method.encoder` is what gets saved
    Trainer(method, ..., task.batches)      # `task.batches()` yields one epoch of training batches
    builder, spec = task.encoder_spec()     # `artifacts.builder(builder)(**spec)` rebuilds the encoder
    task.evaluate(encoder, seed)            # {"protocol", "metric", "test", "val", ...} on the saved encoder
    task.embed(encoder)                     # the frozen representations `graphcl embed` writes

Tasks are imported lazily: `graphcl train` on Cora never imports the image or sequence code.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Protocol

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from graphcl.core.lazy import resolve

TASKS = {
    "node": "graphcl.train.tasks.node:NodeTask",
    "graph": "graphcl.train.tasks.graph:GraphTask",
    "image": "graphcl.train.tasks.image:ImageTask",
    "sequence": "graphcl.train.tasks.sequence:SequenceTask",
}


class Task(Protocol):
    name: str  # the dataset's name for results.json and encoder.pt

    def build_method(self) -> nn.Module: ...

    def batches(self) -> Iterable: ...

    def encoder_spec(self) -> tuple[str, dict[str, Any]]: ...

    def evaluate(self, encoder: nn.Module, seed: int) -> dict: ...

    def embed(self, encoder: nn.Module) -> Tensor: ...


def task_name(cfg: DictConfig) -> str:
    from graphcl.train.build import method_class

    return getattr(method_class(cfg.model.method), "task", "node")


def get_task(cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> Task:
    """The task of `cfg.model.method`, with its data loaded (or `dataset`, a user's own, used as given)."""
    return resolve(TASKS[task_name(cfg)])(cfg, device, dataset=dataset)
