"""Redundancy reduction on two views: VICReg (Bardes et al., ICLR 2022) and Barlow Twins (Zbontar et al., ICML 2021).

views: two augmented crops; encoder: backbone + 3-layer expander (BN + ReLU between layers); objective: `vicreg`
(invariance + variance + covariance) or `barlow_twins` (cross-correlation to the identity), on the embeddings
gathered from all processes so the batch statistics are those of the global batch.
"""
from __future__ import annotations

from torch import Tensor

from graphcl.core.distributed import gather_with_grad
from graphcl.core.heads import MLP
from graphcl.core.losses import barlow_twins, vicreg
from graphcl.vision.methods.base import Batch, ImageMethod
from graphcl.vision.views import ImageViews


class _TwoViewExpander(ImageMethod):
    def __init__(self, encoder, feature_dim: int, views: ImageViews | None, proj_hidden: int | None,
                 proj_out: int) -> None:
        super().__init__(encoder, views)
        self.projector = MLP(feature_dim, proj_hidden or proj_out, proj_out, num_layers=3)

    def embeddings(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The two views' expander outputs, gathered over processes: `[B_global, proj_out]` each."""
        x, _ = self.split(batch)
        z1, z2 = self.encode(self.views(x)[:2], self.encoder, self.projector)
        return gather_with_grad(z1), gather_with_grad(z2)


class VICReg(_TwoViewExpander):
    """`forward(batch) -> loss`.

    Args:
        proj_hidden, proj_out: expander widths (VICReg: 8192, 8192). sim_coeff, std_coeff, cov_coeff: 25, 25, 1.
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, proj_hidden: int | None = None,
                 proj_out: int = 2048, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                 cov_coeff: float = 1.0) -> None:
        super().__init__(encoder, feature_dim, views, proj_hidden, proj_out)
        self.coeffs = (sim_coeff, std_coeff, cov_coeff)

    def forward(self, batch: Batch) -> Tensor:
        return vicreg(*self.embeddings(batch), *self.coeffs)


class BarlowTwins(_TwoViewExpander):
    """`forward(batch) -> loss`.

    Args:
        proj_hidden, proj_out: projector widths (Barlow Twins: 8192, 8192). lambd: off-diagonal weight (5e-3).
    """

    def __init__(self, encoder, feature_dim: int, views: ImageViews | None = None, proj_hidden: int | None = None,
                 proj_out: int = 2048, lambd: float = 5e-3) -> None:
        super().__init__(encoder, feature_dim, views, proj_hidden, proj_out)
        self.lambd = lambd

    def forward(self, batch: Batch) -> Tensor:
        return barlow_twins(*self.embeddings(batch), self.lambd)
