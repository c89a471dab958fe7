"""DINO: Emerging Properties in Self-Supervised Vision Transformers (Caron et al., ICCV 2021).

views: 2 global + k local crops; encoder: student backbone + head (MLP -> l2-normalised bottleneck -> linear
layer with unit-norm rows to K outputs), and a teacher (backbone + head) that is an EMA of the student, momentum
raised to 1 on a cosine; objective: `dino` cross-entropy of the student on every view against the centred,
sharpened teacher on the other global views; teacher temperature warmed up linearly; `DINOCenter` updated after
every loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphcl.core.heads import MLP
from graphcl.core.losses import DINOCenter, dino
from graphcl.core.momentum import copy_as_target, cosine_schedule, ema_update
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class DINOHead(nn.Module):
    """`[*, in_dim] -> [*, out_dim]`: 3-layer GELU MLP to `bottleneck`, l2-normalise, then a bias-free linear
    layer whose rows are normalised at every call (DINO's weight-normalised last layer with its gain fixed to 1)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck: int = 256) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, hidden_dim, bottleneck, num_layers=3, norm=None, act="gelu")
        self.last = nn.Linear(bottleneck, out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.normalize(self.mlp(x), dim=-1), F.normalize(self.last.weight, dim=1))


class DINO(ImageMethod):
    """`forward(batch) -> loss` (and update the centre), `after_step` (EMA of the teacher, step count).

    Args:
        out_dim: K (65536 in DINO). proj_hidden, bottleneck: head widths (2048, 256).
        student_temp: 0.1. teacher_temp: after warm-up (0.04 - 0.07); warmup_teacher_temp: at step 0;
            warmup_teacher_temp_epochs: linear warm-up length.
        center_momentum: of `DINOCenter` (0.9). momentum_start: teacher EMA momentum at step 0 (0.996).
        steps_per_epoch, total_steps: passed by the task (None: total from after_step).
    """

    steps: Tensor

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, out_dim: int = 4096,
                 proj_hidden: int | None = None, bottleneck: int = 256, student_temp: float = 0.1,
                 teacher_temp: float = 0.07, warmup_teacher_temp: float = 0.04,
                 warmup_teacher_temp_epochs: float = 0.0, center_momentum: float = 0.9,
                 momentum_start: float = 0.996, steps_per_epoch: int = 1, total_steps: int | None = None) -> None:
        super().__init__(encoder, views)
        self.head = DINOHead(feature_dim, out_dim, proj_hidden or 2048, bottleneck)
        self.teacher_encoder, self.teacher_head = copy_as_target(encoder), copy_as_target(self.head)
        self.center = DINOCenter(out_dim, center_momentum)
        self.student_temp, self.teacher_temps = student_temp, (warmup_teacher_temp, teacher_temp)
        self.warmup_steps = round(warmup_teacher_temp_epochs * steps_per_epoch)
        self.momentum_start, self.total_steps = momentum_start, total_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # optimiser steps taken

    def teacher_temp(self) -> float:
        """Linear from warmup_teacher_temp to teacher_temp over the warm-up steps, then constant."""
        start, end = self.teacher_temps
        if int(self.steps) >= self.warmup_steps:
            return end
        return start + (end - start) * int(self.steps) / self.warmup_steps

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        views = self.views(x)
        student = self.encode(views, self.encoder, self.head)
        with torch.no_grad():
            teacher = self.encode(views[: self.views.num_global], self.teacher_encoder, self.teacher_head)
        loss = dino(student, teacher, self.center.center, self.student_temp, self.teacher_temp())
        self.center.update(teacher)  # all-reduced over processes inside DINOCenter
        return loss

    def after_step(self, step: int, total_steps: int) -> None:
        self.steps += 1
        m = cosine_schedule(step - 1, self.total_steps or total_steps, self.momentum_start, 1.0)
        ema_update(self.encoder, self.teacher_encoder, m)
        ema_update(self.head, self.teacher_head, m)
