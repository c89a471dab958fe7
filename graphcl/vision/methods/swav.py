"""SwAV: Unsupervised Learning of Visual Features by Contrasting Cluster Assignments (Caron et al., NeurIPS 2020).

views: 2 global + k local crops (multi-crop); encoder: backbone + projector, l2-normalised, scored against K
prototypes (a bias-free linear layer whose rows are re-normalised before every step and frozen for the first
epoch); objective: `swav` swapped prediction, codes of each global view from `sinkhorn` over the global batch
(optionally with a queue of past global embeddings prepended, used once it is full).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphcl.core.distributed import gather_with_grad
from graphcl.core.heads import projection_head
from graphcl.core.losses import sinkhorn, swav
from graphcl.core.memory import Queue
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class SwAV(ImageMethod):
    """`forward(batch) -> loss`, `after_step` (counts steps: prototype freezing), `codes(images)`.

    Args:
        num_prototypes: K (3000 on ImageNet). temperature: of the swapped prediction (0.1).
        epsilon, sinkhorn_iterations: of `sinkhorn` (0.05, 3).
        queue_size: past embeddings per global view (0: no queue).
        freeze_prototypes_epochs: epochs whose prototypes get no gradient; steps_per_epoch: the task passes it.
    """

    steps: Tensor

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, num_prototypes: int = 3000,
                 temperature: float = 0.1, epsilon: float = 0.05, sinkhorn_iterations: int = 3,
                 proj_hidden: int | None = None, proj_out: int = 128, queue_size: int = 0,
                 freeze_prototypes_epochs: float = 1.0, steps_per_epoch: int = 1) -> None:
        super().__init__(encoder, views)
        self.projector = projection_head(feature_dim, proj_out, proj_hidden)
        self.prototypes = nn.Linear(proj_out, num_prototypes, bias=False)
        num_global = self.views.num_global
        self.queues = nn.ModuleList([Queue(queue_size, proj_out) for _ in range(num_global)] if queue_size else [])
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations
        self.freeze_steps = round(freeze_prototypes_epochs * steps_per_epoch)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # optimiser steps taken

    def _embed_views(self, x: Tensor) -> list[Tensor]:
        with torch.no_grad():  # unit-norm prototypes, so scores are cosines
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        return [F.normalize(z, dim=1) for z in self.encode(self.views(x), self.encoder, self.projector)]

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        zs = self._embed_views(x)
        w = self.prototypes.weight
        if int(self.steps) < self.freeze_steps:  # no gradient reaches the prototypes: the optimiser skips them
            w = w.detach()
        # scores of the global batch: Sinkhorn's equipartition is over all processes' images
        scores = [gather_with_grad(z @ w.T) for z in zs]
        globals_ = range(self.views.num_global)
        queue_scores = None
        if self.queues and all(len(q) == q.size for q in self.queues):
            queue_scores = [q.read() @ w.detach().T for q in self.queues]
        loss = swav(scores, self.temperature, tuple(globals_), self.iterations, self.epsilon, queue_scores)
        for q, i in zip(self.queues, globals_):
            q.enqueue(gather_with_grad(zs[i].detach()))
        return loss

    def after_step(self, step: int, total_steps: int) -> None:
        self.steps += 1

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """Sinkhorn codes `[B, K]` of the first global view of images `x` (rows sum to 1, columns to ~B/K)."""
        z = self._embed_views(x)[0]
        return sinkhorn(z @ self.prototypes.weight.T, self.iterations, self.epsilon)
