"""SimCLR: A Simple Framework for Contrastive Learning of Visual Representations (Chen et al., ICML 2020).

views: two augmented crops; encoder: backbone + projection MLP; energy: cosine / T; objective: `nt_xent`
over the 2N views of the batch (gathered from all processes), every other view a negative.
"""
from __future__ import annotations

from torch import Tensor

from graphcl.core.distributed import gather_with_grad
from graphcl.core.heads import projection_head
from graphcl.core.losses import nt_xent
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class SimCLR(ImageMethod):
    """`forward(batch) -> loss`, `embed(images) -> [B, feature_dim]`.

    Args:
        temperature: of the cosine energy. proj_hidden / proj_out: projector widths (hidden defaults to
            feature_dim). chunk_size: rows of the score matrix alive at once (None: all).
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, temperature: float = 0.5,
                 proj_hidden: int | None = None, proj_out: int = 128, chunk_size: int | None = None) -> None:
        super().__init__(encoder, views)
        self.projector = projection_head(feature_dim, proj_out, proj_hidden)
        self.temperature, self.chunk_size = temperature, chunk_size

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        z1, z2 = self.encode(self.views(x)[:2], self.encoder, self.projector)
        # every process computes the same loss over the global batch (core.distributed's convention)
        return nt_xent(gather_with_grad(z1), gather_with_grad(z2), self.temperature, self.chunk_size)
