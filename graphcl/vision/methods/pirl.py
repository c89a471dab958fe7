"""PIRL: Self-Supervised Learning of Pretext-Invariant Representations (Misra & van der Maaten, CVPR 2020).

views: an augmented image, and the jigsaw transform of another augmentation (3 x 3 patches, jittered, shuffled);
encoder: the backbone on the image (-> linear head f) and on every patch (-> linear per patch, concatenated in
the shuffled order, -> linear head g); energy: cosine / T; objective: `pirl_nce` of the memory-bank entry of
each image against f and g, with negatives sampled from the `MemoryBank`, which is then EMA-refreshed with f.
Until an image's bank row is first written its positive is its own detached f (not the row's random init), and
negatives come from the written rows once there are `num_negatives` of them (before, from all rows: random unit
vectors are near-orthogonal to everything, weak but harmless negatives).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from graphcl.core.distributed import gather_with_grad
from graphcl.core.losses import nce_log_norm, pirl_nce
from graphcl.core.memory import MemoryBank
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews, jigsaw


class PIRL(ImageMethod):
    """`forward((images, indices)) -> loss` (and refresh the bank rows of `indices`).

    Args:
        dataset_size: rows of the memory bank (the task passes the number of training images).
        num_negatives: bank entries drawn per step, shared by the batch (PIRL: 32000).
        temperature, lambd: of `pirl_nce` (0.07, 0.5: weight of the jigsaw term).
        bank_momentum: weight of the old bank entry (0.5).
        grid, patch_size: jigsaw grid and patch side (None: 4/5 of the tile side, PIRL's 64 of 85).
        normalise: estimate NCE's normalising constant Z on the first step and keep it (`nce_log_norm`, as
            VISSL's PIRL and Wu et al. do); False: Z = 1, the loss as the paper prints it, where the K negative
            terms outweigh the positive one.
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, dataset_size: int = 50000,
                 num_negatives: int = 4096, temperature: float = 0.07, lambd: float = 0.5,
                 bank_momentum: float = 0.5, proj_out: int = 128, grid: int = 3,
                 patch_size: int | None = None, normalise: bool = True) -> None:
        super().__init__(encoder, views)
        self.image_head = nn.Linear(feature_dim, proj_out)
        self.patch_head = nn.Linear(feature_dim, proj_out)
        self.jigsaw_head = nn.Linear(grid * grid * proj_out, proj_out)
        self.bank = MemoryBank(dataset_size, proj_out, bank_momentum)
        self.dataset_size, self.num_negatives = dataset_size, num_negatives
        self.temperature, self.lambd, self.grid, self.patch_size = temperature, lambd, grid, patch_size
        self.normalise = normalise
        self.register_buffer("log_norm", torch.tensor(float("nan") if normalise else 0.0))  # log Z, set once

    def jigsaw_features(self, x: Tensor) -> Tensor:
        """g: `[B, C, H, W] -> [B, proj_out]` from the shuffled patches of `x`."""
        tile = min(x.shape[-2:]) // self.grid
        size = self.patch_size or max(1, 4 * tile // 5)
        patches, _ = jigsaw(x, self.grid, size)
        b, n = patches.shape[:2]
        h = self.patch_head(self.encoder(patches.flatten(0, 1)))  # [B * n, proj_out]
        return self.jigsaw_head(h.view(b, -1))  # concatenated in the shuffled order: the order carries no signal

    def forward(self, batch: Batch) -> Tensor:
        x, idx = self.split(batch)
        if idx is None:
            raise ValueError("PIRL needs (images, indices) batches: the indices address the memory bank")
        image_view, jigsaw_view = self.views(x)[:2]
        f = self.image_head(self.encoder(image_view))
        g = self.jigsaw_features(jigsaw_view)
        filled_only = int(self.bank.filled.sum()) >= self.num_negatives
        negatives = self.bank.get(self.bank.sample(self.num_negatives, filled_only=filled_only))
        memory = self.bank.positives(idx, f)  # a first visit: f itself, detached
        f_all = gather_with_grad(f.detach())  # every process's features: the same bank and Z everywhere
        if self.log_norm.isnan():
            self.log_norm.fill_(nce_log_norm(f_all, negatives, self.dataset_size, self.temperature))
        loss = pirl_nce(memory, f, g, negatives, self.dataset_size, self.temperature, self.lambd,
                        float(self.log_norm))
        self.bank.update(gather_with_grad(idx), f_all)
        return loss
