"""Sequence views: a crop of random length and position per batch, then (time series) amplitude scaling,
jitter and channel masking. Batched tensor ops on `x [B, C, L]`, `mask [B, L]`; no loop over sequences."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["SequenceView", "random_crop"]


def random_crop(x: Tensor, mask: Tensor, length: int, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """Crop every sequence to `length` steps at a uniform start inside its real steps -> (`[B, C, length]`, `[B, length]`).

    A sequence shorter than `length` keeps its start (start 0) and the rest is padding in the returned mask.
    """
    b, c, l = x.shape
    length = min(int(length), l)
    real = mask.sum(1)
    room = (real - length).clamp_min(0)  # start in [0, room]
    start = (torch.rand(b, generator=generator, device=generator.device if generator else None).to(x.device)
             * (room + 1)).floor().long().clamp(max=room)
    idx = start[:, None] + torch.arange(length, device=x.device)[None, :]
    return x.gather(2, idx[:, None, :].expand(b, c, length)), mask.gather(1, idx)


class SequenceView:
    """One random view of a padded batch.

    Args:
        min_length, max_length: crop length drawn uniformly in [min_length, max_length] once per batch
            (None: no crop; max_length None with min_length set: up to the batch's length).
        scale: std of a per-(sequence, channel) amplitude factor 1 + scale * N(0, 1) (0: off).
        jitter: std of additive Gaussian noise per step (0: off).
        channel_mask: probability of zeroing each channel of each sequence (0: off; never all channels).
    """

    def __init__(self, min_length: Optional[int] = None, max_length: Optional[int] = None, scale: float = 0.0,
                 jitter: float = 0.0, channel_mask: float = 0.0) -> None:
        for name, v in (("scale", scale), ("jitter", jitter)):
            if v < 0:
                raise ValueError(f"SequenceView: {name} must be >= 0, got {v}")
        if not 0 <= channel_mask < 1:
            raise ValueError(f"SequenceView: channel_mask must lie in [0, 1), got {channel_mask}")
        if min_length is not None and max_length is not None and min_length > max_length:
            raise ValueError(f"SequenceView: min_length={min_length} > max_length={max_length}")
        self.min_length, self.max_length = min_length, max_length
        self.scale, self.jitter, self.channel_mask = scale, jitter, channel_mask

    def __repr__(self) -> str:
        return (f"SequenceView(min_length={self.min_length}, max_length={self.max_length}, scale={self.scale}, "
                f"jitter={self.jitter}, channel_mask={self.channel_mask})")

    def __call__(self, x: Tensor, mask: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
        if self.min_length is not None or self.max_length is not None:
            hi = min(self.max_length or x.shape[2], x.shape[2])
            lo = min(self.min_length or hi, hi)
            length = int(torch.randint(lo, hi + 1, (1,), generator=generator))
            x, mask = random_crop(x, mask, length, generator)
        b, c, _ = x.shape
        dev = dict(device=generator.device if generator else None, generator=generator)
        if self.scale:
            x = x * (1 + self.scale * torch.randn(b, c, 1, **dev).to(x))
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape, **dev).to(x)
        if self.channel_mask and c > 1:
            keep = torch.rand(b, c, **dev).to(x.device) >= self.channel_mask
            keep[keep.sum(1) == 0, 0] = True  # a view with no channel left carries no signal
            x = x * keep[:, :, None].to(x)
        return x * mask[:, None, :].to(x), mask
