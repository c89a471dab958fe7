"""CPC: Representation Learning with Contrastive Predictive Coding (van den Oord et al., 2018).

views: a random crop (plus, for time series, scaling / jitter / channel masking) of each sequence;
encoder: g_enc (strided or causal dilated convolutions) -> latents z_t, g_ar (GRU or causal Transformer) ->
contexts c_t; energy: the log-bilinear score W_k c_t . z_{t+k} (dot product, T = 1); objective: `info_nce`
picking the true future latent among negatives from the batch, the same sequence, or a core `Queue` of
latents from earlier batches, for k = 1..K.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from graphcl.core.memory import Queue
from graphcl.sequence.encoders import SequenceEncoder
from graphcl.sequence.steps import NEGATIVES, StepPredictors, cpc_loss
from graphcl.sequence.views import SequenceView


class SequenceBatch(NamedTuple):
    """A padded batch: `x [B, C, L]`, `mask [B, L]` (True = real step, right-padded)."""

    x: Tensor
    mask: Tensor


class CPC(nn.Module):
    """`forward(batch) -> loss`, `embed(x, mask) -> [B, F]` (pooled frozen representation), `after_step` (queue).

    Args:
        encoder: a `SequenceEncoder` (g_enc + g_ar), the module saved and evaluated.
        steps: K, the number of future steps predicted (one linear W_k each, shared over t).
        negatives: `batch` (CPC's default), `same_sequence` or `queue`.
        num_negatives: negatives per anchor (`queue`: None uses the whole queue as shared negatives).
        queue_size: rows of the latent queue (`queue` only); it holds the real latents of earlier batches.
        view: the `SequenceView` applied to every training batch (None: the batch as given).
        chunk_size: bounds the live scores against a shared queue (see `info_nce`).
    """

    task = "sequence"
    encoder_builder = "sequence"

    def __init__(self, encoder: SequenceEncoder, steps: int = 12, negatives: str = "batch",
                 num_negatives: Optional[int] = 10, queue_size: int = 4096, view: Optional[SequenceView] = None,
                 chunk_size: Optional[int] = None) -> None:
        super().__init__()
        if negatives not in NEGATIVES:
            raise ValueError(f"CPC: negatives must be one of {NEGATIVES}, got {negatives!r}")
        if num_negatives is None and negatives != "queue":
            raise ValueError(f"CPC: num_negatives=None (the whole queue) needs negatives='queue', got {negatives!r}")
        if num_negatives is not None and num_negatives < 1:
            raise ValueError(f"CPC: num_negatives must be >= 1 or None, got {num_negatives}")
        self.encoder = encoder
        self.predictors = StepPredictors(encoder.context_channels, encoder.latent_channels, steps)
        self.negatives, self.num_negatives, self.chunk_size = negatives, num_negatives, chunk_size
        self.view = view if view is not None else SequenceView()
        self.queue = Queue(queue_size, encoder.latent_channels) if negatives == "queue" else None
        self._pending: Optional[Tensor] = None  # this batch's real latents, enqueued by after_step

    def forward(self, batch: SequenceBatch | tuple[Tensor, Tensor]) -> Tensor:
        x, mask = batch
        x, mask = self.view(x, mask)
        z, c, zmask = self.encoder.encode(x, mask)
        # read the queue BEFORE enqueueing this batch, so a batch never contrasts with itself
        bank = self.queue.read() if self.queue is not None else None
        loss = cpc_loss(z, c, zmask, self.predictors, self.negatives, self.num_negatives, bank,
                        chunk_size=self.chunk_size)
        if self.queue is not None:
            self._pending = z[zmask].detach()
        return loss

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        if self.queue is not None and self._pending is not None:
            self.queue.enqueue(self._pending)
            self._pending = None

    @torch.no_grad()
    def embed(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return self.encoder.pool(x, mask)
