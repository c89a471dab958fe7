"""CPC's prediction task on the shared core: k-step linear predictors, the (anchor, future step) pairs of a
padded batch, negative sampling, and the loss as one `graphcl.core.losses.info_nce` call (dot energy, T = 1).

Only real steps are ever gathered: latents and contexts are first packed into a "pool" of the real steps of
the batch (`z[zmask]`), anchors are pairs (t, t + k) with both steps real, and negatives are drawn from the
pool, so a padded step is never a positive, a negative or a query (and its value is never read).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphcl.core.losses import info_nce

__all__ = ["StepPredictors", "future_pairs", "sample_negatives", "cpc_loss", "NEGATIVES"]

NEGATIVES = ("batch", "same_sequence", "queue")


class StepPredictors(nn.Module):
    """K linear maps W_k (k = 1..K, shared over t) from a context `[*, H]` to predicted latents `[*, K, D]`,
    as one Linear(H, K * D) without bias (CPC's log-bilinear score is W_k c_t . z_{t+k})."""

    def __init__(self, context_channels: int, latent_channels: int, steps: int) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"StepPredictors: steps must be >= 1, got {steps}")
        self.steps, self.latent_channels = steps, latent_channels
        self.linear = nn.Linear(context_channels, steps * latent_channels, bias=False)

    def weight(self, k: int) -> Tensor:
        """W_k `[D, H]` for k in 1..K."""
        d = self.latent_channels
        return self.linear.weight[(k - 1) * d: k * d]

    def forward(self, c: Tensor) -> Tensor:
        return self.linear(c).unflatten(-1, (self.steps, self.latent_channels))


def future_pairs(lengths: Tensor, steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """Every (b, t, k) with k in 1..steps and t + k < lengths[b] -> three `[N]` long tensors (b-, t-, k-major)."""
    t_max = int(lengths.max()) if lengths.numel() else 0
    t = torch.arange(t_max, device=lengths.device)
    k = torch.arange(1, steps + 1, device=lengths.device)
    ok = (t[None, :, None] + k[None, None, :]) < lengths[:, None, None]  # [B, T, K]
    b, tt, kk = ok.nonzero(as_tuple=True)
    return b, tt, kk + 1


def sample_negatives(mode: str, lengths: Tensor, offsets: Tensor, b: Tensor, target: Tensor, num: int,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """`num` negatives per anchor as pool rows `[N, num]`, never the anchor's positive (pool row offsets[b] + target).

    mode `batch`: uniform over the real steps of the whole batch (other sequences and other steps, CPC's
    default); `same_sequence`: uniform over the other real steps of the anchor's own sequence.
    """
    n, device = len(b), lengths.device
    gdev = generator.device if generator is not None else device
    if mode == "batch":
        total = int(lengths.sum())
        if total < 2:
            raise ValueError(f"sample_negatives: 'batch' negatives need >= 2 real steps, got {total}")
        r = torch.randint(total - 1, (n, num), generator=generator, device=gdev).to(device)
        positive = (offsets[b] + target)[:, None]
        return r + (r >= positive).long()  # skip the positive: uniform over the other total - 1 rows
    if mode == "same_sequence":
        others = (lengths[b] - 1)[:, None]  # >= 1: an anchor exists only if t + k < length
        r = (torch.rand(n, num, generator=generator, device=gdev).to(device) * others).floor().long()
        r = torch.minimum(r, others - 1)
        return offsets[b][:, None] + r + (r >= target[:, None]).long()
    raise ValueError(f"sample_negatives: mode must be 'batch' or 'same_sequence', got {mode!r}")


def cpc_loss(z: Tensor, c: Tensor, zmask: Tensor, predictors: StepPredictors, negatives: str = "batch",
             num_negatives: Optional[int] = 10, bank: Optional[Tensor] = None,
             generator: Optional[torch.Generator] = None, chunk_size: Optional[int] = None,
             return_details: bool = False):
    """CPC's InfoNCE over every real (t, t + k) pair, k = 1..K, as ONE `info_nce(..., energy="dot", temperature=1)`.

    z `[B, T, D]` latents, c `[B, T, H]` contexts, zmask `[B, T]` (right-padded real steps). Query W_k c_t,
    positive z_{t+k}. negatives `batch` / `same_sequence`: `num_negatives` per-anchor negatives `[N, M, D]`
    from `sample_negatives`; `queue`: negatives from `bank` `[Q, D]` (latents of earlier batches): all of it,
    shared (`num_negatives` None), or `num_negatives` rows drawn per anchor. Mean over all N anchors.
    With `return_details`, also returns {"pairs": (b, t, k) `[N]` each, "negatives": (b, t) of each sampled
    negative `[N, M, 2]` (None for the bank), "pool": z[zmask] `[V, D]`}.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"cpc_loss: negatives must be one of {NEGATIVES}, got {negatives!r}")
    if z.dim() != 3 or c.shape[:2] != z.shape[:2] or zmask.shape != z.shape[:2]:
        raise ValueError(f"cpc_loss: z {tuple(z.shape)}, c {tuple(c.shape)} and zmask {tuple(zmask.shape)} "
                         f"must be [B, T, D], [B, T, H] and [B, T]")
    lengths = zmask.sum(1)
    offsets = lengths.cumsum(0) - lengths  # pool row of (b, 0): real steps are packed b-major
    pool_z, pool_c = z[zmask], c[zmask]  # [V, D], [V, H]: padded steps are never read
    b, t, k = future_pairs(lengths, predictors.steps)
    if len(b) == 0:
        raise ValueError(f"cpc_loss: no sequence has a real step t + k for k >= 1 (latent lengths {lengths.tolist()})")
    query = predictors(pool_c)[offsets[b] + t, k - 1]  # [N, D]
    positive = pool_z[offsets[b] + t + k]
    neg_rows = None
    if negatives == "queue" and bank is not None and len(bank):
        bank = bank.detach().to(z.dtype)
        if num_negatives is None:
            negs = bank
        else:
            pick = torch.randint(len(bank), (len(b), num_negatives), generator=generator,
                                 device=generator.device if generator is not None else bank.device)
            negs = bank[pick.to(bank.device)]
    else:  # `queue` with an empty bank (the very first step) falls back to in-batch negatives
        mode = "batch" if negatives == "queue" else negatives
        neg_rows = sample_negatives(mode, lengths, offsets, b, t + k, num_negatives or 10, generator)
        negs = pool_z[neg_rows]
    loss = info_nce(query, positive, negs, temperature=1.0, energy="dot", chunk_size=chunk_size)
    if not return_details:
        return loss
    details = {"pairs": (b, t, k), "negatives": None, "pool": pool_z}
    if neg_rows is not None:
        seq = torch.repeat_interleave(torch.arange(len(lengths), device=z.device), lengths)
        details["negatives"] = torch.stack([seq[neg_rows], neg_rows - offsets[seq[neg_rows]]], -1)
    return loss, details
