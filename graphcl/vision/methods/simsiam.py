"""SimSiam: Exploring Simple Siamese Representation Learning (Chen & He, CVPR 2021).

views: two augmented crops; encoder: backbone + 3-layer projector (BN on every layer) + bottleneck predictor;
energy: cosine; objective: symmetrised `neg_cosine` of each prediction against the other view's projection
under stop-gradient. No target network, no negatives: the stop-gradient and the predictor prevent collapse.
"""
from __future__ import annotations

from torch import Tensor

from graphcl.core.heads import MLP, prediction_head
from graphcl.core.losses import neg_cosine
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class SimSiam(ImageMethod):
    """`forward(batch) -> loss`.

    Args:
        proj_hidden, proj_out: projector widths (SimSiam: 2048, 2048; hidden defaults to proj_out).
        pred_hidden: the predictor's bottleneck (SimSiam: 512; defaults to proj_out // 4).
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, proj_hidden: int | None = None,
                 proj_out: int = 2048, pred_hidden: int | None = None) -> None:
        super().__init__(encoder, views)
        self.projector = MLP(feature_dim, proj_hidden or proj_out, proj_out, num_layers=3, last_norm=True)
        self.predictor = prediction_head(proj_out, pred_hidden or max(1, proj_out // 4))

    def forward(self, batch: Batch) -> Tensor:
        x, _ = self.split(batch)
        z1, z2 = self.encode(self.views(x)[:2], self.encoder, self.projector)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return (neg_cosine(p1, z2) + neg_cosine(p2, z1)) / 2  # neg_cosine stops the gradient through z
