"""MoCo v2: Improved Baselines with Momentum Contrastive Learning (Chen et al., 2020).

views: two augmented crops; encoder: query backbone + MLP head, and a key backbone + head that is an EMA of
it; energy: cosine / T; objective: `info_nce` of each query against its key, with the keys of past batches in
a FIFO `Queue` as negatives. Keys are enqueued (gathered from all processes) right after the loss is built.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphcl.core.distributed import gather_with_grad
from graphcl.core.heads import projection_head
from graphcl.core.losses import info_nce
from graphcl.core.memory import Queue
from graphcl.core.momentum import copy_as_target, ema_update
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class MoCo(ImageMethod):
    """`forward(batch) -> loss` (and enqueue the keys), `after_step` (EMA of the key encoder).

    Args:
        queue_size: negatives kept (MoCo: 65536). momentum: EMA momentum of the key encoder (0.999 in MoCo v2
            over 200 epochs; short runs want less). temperature: 0.2 in MoCo v2.
        symmetric: also use view 2 as query and view 1 as key (both keys are enqueued).
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, queue_size: int = 4096,
                 momentum: float = 0.99, temperature: float = 0.2, proj_hidden: int | None = None,
                 proj_out: int = 128, symmetric: bool = False) -> None:
        super().__init__(encoder, views)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MoCo: momentum must lie in [0, 1], got {momentum}")
        self.projector = projection_head(feature_dim, proj_out, proj_hidden, norm=None)  # MoCo v2: no BN in head
        self.key_encoder, self.key_projector = copy_as_target(encoder), copy_as_target(self.projector)
        self.queue = Queue(queue_size, proj_out)
        self.momentum, self.temperature, self.symmetric = momentum, temperature, symmetric

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        views = self.views(x)[:2]
        pairs = [(0, 1), (1, 0)] if self.symmetric else [(0, 1)]
        queries = self.encode(views, self.encoder, self.projector)
        with torch.no_grad():
            keys = [F.normalize(k, dim=1) for k in self.encode(views, self.key_encoder, self.key_projector)]
        negatives = self.queue.read() if len(self.queue) else None  # read BEFORE enqueueing this batch's keys
        # an empty queue (first step) falls back to in-batch keys as negatives
        loss = torch.stack([info_nce(queries[q], keys[k], negatives, self.temperature) for q, k in pairs]).mean()
        for _, k in pairs:
            self.queue.enqueue(gather_with_grad(keys[k]))  # every process holds the same queue
        return loss

    def after_step(self, step: int, total_steps: int) -> None:
        ema_update(self.encoder, self.key_encoder, self.momentum)
        ema_update(self.projector, self.key_projector, self.momentum)
