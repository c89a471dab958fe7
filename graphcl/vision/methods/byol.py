"""BYOL: Bootstrap Your Own Latent (Grill et al., NeurIPS 2020).

views: two augmented crops (asymmetric blur / solarisation); encoder: online backbone + projector + predictor,
and a target backbone + projector that is an EMA of the online ones, momentum raised to 1 on a cosine; energy:
cosine; objective: `neg_cosine` of each view's prediction against the target's projection of the other view.
"""
from __future__ import annotations

import torch
from torch import Tensor

from graphcl.core.heads import prediction_head, projection_head
from graphcl.core.losses import neg_cosine
from graphcl.core.momentum import copy_as_target, cosine_schedule, ema_update
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class BYOL(ImageMethod):
    """`forward(batch) -> loss`, `after_step(step, total_steps)` (EMA update of the target).

    Args:
        proj_hidden, proj_out, pred_hidden: head widths (BYOL: 4096, 256, 4096; hidden defaults to feature_dim).
        momentum_start: EMA momentum at step 0 (0.996), raised to 1 along a cosine.
        total_steps: the schedule's length (the task passes epochs x batches per epoch); None uses after_step's.
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, proj_hidden: int | None = None,
                 proj_out: int = 256, pred_hidden: int | None = None, momentum_start: float = 0.996,
                 total_steps: int | None = None) -> None:
        super().__init__(encoder, views)
        if not 0.0 <= momentum_start <= 1.0:
            raise ValueError(f"BYOL: momentum_start must lie in [0, 1], got {momentum_start}")
        self.projector = projection_head(feature_dim, proj_out, proj_hidden)
        self.predictor = prediction_head(proj_out, pred_hidden or proj_hidden)
        self.target_encoder, self.target_projector = copy_as_target(encoder), copy_as_target(self.projector)
        self.momentum_start, self.total_steps = momentum_start, total_steps

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        views = self.views(x)[:2]
        p1, p2 = self.encode(views, self.encoder, self.projector, self.predictor)
        with torch.no_grad():
            t1, t2 = self.encode(views, self.target_encoder, self.target_projector)
        return neg_cosine(p1, t2) + neg_cosine(p2, t1)

    def after_step(self, step: int, total_steps: int) -> None:
        """EMA after optimiser step `step` (1-based), momentum on the cosine ramp over 0-based steps."""
        m = cosine_schedule(step - 1, self.total_steps or total_steps, self.momentum_start, 1.0)
        ema_update(self.encoder, self.target_encoder, m)
        ema_update(self.projector, self.target_projector, m)
