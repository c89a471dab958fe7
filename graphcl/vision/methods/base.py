"""What every image method shares: the batch layout, views, one backbone pass per view resolution, `embed`."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphcl.vision.views import ImageViews

Batch = Tensor | Sequence[Tensor]


class ImageMethod(nn.Module):
    """Base of the image methods: `encoder` is the backbone (what is saved and evaluated), `views` the
    augmentation pipeline (`ImageViews`), applied inside `forward` on the batch's device.

    A batch is images `[B, C, H, W]` in [0, 1], or `(images, indices [B])` (dataset indices: PIRL's memory bank).
    """

    task = "image"

    def __init__(self, encoder: nn.Module, views: ImageViews | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.views = views if views is not None else ImageViews()

    @staticmethod
    def split(batch: Batch) -> tuple[Tensor, Tensor | None]:
        """(images `[B, C, H, W]`, indices `[B]` or None) of a batch."""
        if isinstance(batch, Tensor):
            return batch, None
        if len(batch) != 2:
            raise ValueError(f"a batch is images [B, C, H, W] or (images, indices [B]), got {len(batch)} items")
        x, idx = batch
        if idx is not None and (idx.dim() != 1 or len(idx) != len(x)):
            raise ValueError(f"indices must be [B] = [{len(x)}], got shape {tuple(idx.shape)}")
        return x, idx

    @staticmethod
    def encode(views: Sequence[Tensor], *nets: nn.Module) -> list[Tensor]:
        """`nets` applied in turn to every view `[B, C, h, w]` -> one `[B, D]` per view.

        Views of the same resolution go through in one concatenated pass (one BatchNorm batch, as SwAV and DINO
        do), so two global crops cost one call, and the local crops one more.
        """
        out: list[Tensor | None] = [None] * len(views)
        groups: dict[tuple, list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[1:]), []).append(i)
        for members in groups.values():
            h = torch.cat([views[i] for i in members])
            for net in nets:
                h = net(h)
            for i, chunk in zip(members, h.chunk(len(members))):
                out[i] = chunk
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def embed(self, batch: Batch) -> Tensor:
        """Frozen backbone features `[B, feature_dim]` of un-augmented images."""
        return self.encoder(self.split(batch)[0])
