"""Sequence encoders: CPC's strided convolutions for raw audio, a causal dilated convolutional encoder for
multichannel time series, the autoregressive context networks (`gru`, `causal_transformer`) and
`SequenceEncoder`, the pair (encoder, context) that is trained, saved and evaluated as one module.

Layout: inputs are channels-first `x [B, C, L]` with a boolean `mask [B, L]` (True = a real step, sequences
right-padded); latents and contexts are time-major `[B, T, D]`. Every part is causal or has a finite receptive
field and no normalisation across time, so the outputs at real steps never depend on the padding.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "StridedConvEncoder", "CausalConvEncoder", "GRUContext", "CausalTransformerContext", "SequenceEncoder",
    "build_sequence_encoder", "ENCODERS", "CONTEXTS",
]


class _ChannelNorm(nn.Module):
    """LayerNorm over channels at each step of `[B, C, L]` (never mixes steps, so padding cannot leak in)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class StridedConvEncoder(nn.Module):
    """CPC's raw-audio encoder: unpadded Conv1d layers (default strides 5-4-2-2-2, kernels 10-8-4-4-4, i.e.
    one latent per 160 samples, receptive field 465), each followed by a per-step channel norm and ReLU.

    `forward(x [B, C, L]) -> z [B, T, out_channels]`; `out_lengths(lengths)` gives each sequence's number of
    latents whose receptive field lies inside its real samples.
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 512, out_channels: Optional[int] = None,
                 strides: Sequence[int] = (5, 4, 2, 2, 2), kernels: Sequence[int] = (10, 8, 4, 4, 4),
                 norm: bool = True) -> None:
        super().__init__()
        if len(strides) != len(kernels):
            raise ValueError(f"StridedConvEncoder: strides {list(strides)} and kernels {list(kernels)} differ in length")
        self.strides, self.kernels = tuple(strides), tuple(kernels)
        out_channels = out_channels or hidden_channels
        layers, width = [], in_channels
        for i, (s, k) in enumerate(zip(strides, kernels)):
            out = out_channels if i == len(strides) - 1 else hidden_channels
            layers += [nn.Conv1d(width, out, k, stride=s), _ChannelNorm(out) if norm else nn.Identity(), nn.ReLU()]
            width = out
        self.net = nn.Sequential(*layers)
        self.out_channels = out_channels

    @property
    def receptive_field(self) -> int:
        field, jump = 1, 1
        for s, k in zip(self.strides, self.kernels):
            field, jump = field + (k - 1) * jump, jump * s
        return field

    def out_lengths(self, lengths: Tensor) -> Tensor:
        for s, k in zip(self.strides, self.kernels):
            lengths = torch.div(lengths - k, s, rounding_mode="floor").add(1).clamp_min(0)
        return lengths

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] < self.receptive_field:
            raise ValueError(f"StridedConvEncoder: input of shape {tuple(x.shape)} is shorter than the "
                             f"receptive field ({self.receptive_field} samples)")
        return self.net(x).transpose(1, 2)


class _CausalBlock(nn.Module):
    """Residual block: two causal dilated convolutions (kernel k, left padding (k-1) d) with GELU."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.pad(F.gelu(x), (self.pad, 0)))
        return x + self.conv2(F.pad(F.gelu(h), (self.pad, 0)))


class CausalConvEncoder(nn.Module):
    """Causal dilated convolutional encoder for multichannel time series (one latent per step):
    1x1 input projection, `num_layers` residual blocks with dilations 1, 2, 4, ..., 1x1 output projection.

    `forward(x [B, C, L]) -> z [B, L, out_channels]`; z_t depends on x_{<= t} only.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, out_channels: Optional[int] = None,
                 num_layers: int = 6, kernel_size: int = 3) -> None:
        super().__init__()
        out_channels = out_channels or hidden_channels
        self.inp = nn.Conv1d(in_channels, hidden_channels, 1)
        self.blocks = nn.Sequential(*[_CausalBlock(hidden_channels, kernel_size, 2**i) for i in range(num_layers)])
        self.out = nn.Conv1d(hidden_channels, out_channels, 1)
        self.out_channels = out_channels

    def out_lengths(self, lengths: Tensor) -> Tensor:
        return lengths

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.blocks(self.inp(x))).transpose(1, 2)


class GRUContext(nn.Module):
    """c_t = GRU(z_1..z_t): `[B, T, D] -> [B, T, H]`."""

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 1) -> None:
        super().__init__()
        self.gru = nn.GRU(in_channels, hidden_channels, num_layers=num_layers, batch_first=True)
        self.out_channels = hidden_channels

    def forward(self, z: Tensor) -> Tensor:
        return self.gru(z)[0]


class CausalTransformerContext(nn.Module):
    """Pre-norm Transformer with a causal attention mask and sinusoidal positions: `[B, T, D] -> [B, T, H]`."""

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        if hidden_channels % heads:
            raise ValueError(f"CausalTransformerContext: hidden_channels={hidden_channels} is not divisible by heads={heads}")
        self.inp = nn.Linear(in_channels, hidden_channels)
        layer = nn.TransformerEncoderLayer(hidden_channels, heads, 4 * hidden_channels, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_channels)
        self.out_channels = hidden_channels

    def _positions(self, t: int, like: Tensor) -> Tensor:
        d = like.shape[-1]
        pos = torch.arange(t, device=like.device, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d, 2, device=like.device, dtype=torch.float32) * (-math.log(1e4) / d))
        pe = torch.zeros(t, d, device=like.device)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: d // 2])
        return pe.to(like.dtype)

    def forward(self, z: Tensor) -> Tensor:
        h = self.inp(z)
        h = h + self._positions(h.shape[1], h)
        causal = nn.Transformer.generate_square_subsequent_mask(h.shape[1], device=h.device, dtype=h.dtype)
        return self.norm(self.layers(h, mask=causal, is_causal=True))


ENCODERS = {"cpc_audio": StridedConvEncoder, "tcn": CausalConvEncoder}
CONTEXTS = {"gru": GRUContext, "causal_transformer": CausalTransformerContext}
POOLS = ("context", "latents", "both")


class SequenceEncoder(nn.Module):
    """Encoder g_enc (x -> latents z) followed by the autoregressive context network g_ar (z -> contexts c).

    `forward(x [B, C, L], mask [B, L] | None) -> c [B, T, H]` (per-step contexts);
    `encode(x, mask) -> (z [B, T, D], c [B, T, H], zmask [B, T])`; `pool(x, mask) -> [B, F]`, the contexts
    (or latents, or both concatenated: `pool_over`) max-pooled over real steps: the frozen representation.
    `mask` must be right-padding (True then False); None means every step is real.
    """

    def __init__(self, encoder: nn.Module, context: nn.Module, pool_over: str = "context") -> None:
        super().__init__()
        if pool_over not in POOLS:
            raise ValueError(f"SequenceEncoder: pool_over must be one of {POOLS}, got {pool_over!r}")
        self.encoder, self.context, self.pool_over = encoder, context, pool_over
        self.latent_channels, self.context_channels = encoder.out_channels, context.out_channels

    @property
    def out_channels(self) -> int:
        return {"context": self.context_channels, "latents": self.latent_channels,
                "both": self.latent_channels + self.context_channels}[self.pool_over]

    def encode(self, x: Tensor, mask: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        if x.dim() != 3:
            raise ValueError(f"SequenceEncoder: x must be [B, C, L], got shape {tuple(x.shape)}")
        if mask is not None and mask.shape != (x.shape[0], x.shape[2]):
            raise ValueError(f"SequenceEncoder: mask has shape {tuple(mask.shape)}, expected {(x.shape[0], x.shape[2])}")
        if mask is not None:
            x = x * mask[:, None, :].to(x.dtype)  # padding is zeros, whatever the caller left there
        z = self.encoder(x)
        lengths = torch.full((len(x),), x.shape[2], device=x.device) if mask is None else mask.sum(1)
        zmask = torch.arange(z.shape[1], device=x.device)[None, :] < self.encoder.out_lengths(lengths)[:, None]
        return z, self.context(z), zmask

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return self.encode(x, mask)[1]

    def pool(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        z, c, zmask = self.encode(x, mask)
        h = {"context": c, "latents": z, "both": torch.cat([z, c], -1) if self.pool_over == "both" else c}[self.pool_over]
        pooled = h.masked_fill(~zmask[..., None], -math.inf).amax(1)
        return pooled.masked_fill(~zmask.any(1, keepdim=True), 0.0)  # too short for one latent: zeros


def build_sequence_encoder(name: str, in_channels: int, hidden_channels: int = 256, out_channels: Optional[int] = None,
                           num_layers: Optional[int] = None, context: str = "gru",
                           context_channels: Optional[int] = None, context_layers: Optional[int] = None,
                           heads: int = 4, pool_over: str = "context", kernel_size: int = 3,
                           norm: bool = True) -> SequenceEncoder:
    """The `SequenceEncoder` of a config (`model.encoder` + its `options`); the "sequence" builder of encoder.pt.

    name: `cpc_audio` (StridedConvEncoder; `num_layers` ignored: CPC's five layers) or `tcn` (CausalConvEncoder,
    `num_layers` residual blocks, default 6); context: `gru` (default 1 layer) or `causal_transformer` (default 2).
    """
    if name not in ENCODERS:
        raise ValueError(f"build_sequence_encoder: unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    if context not in CONTEXTS:
        raise ValueError(f"build_sequence_encoder: unknown context {context!r}; choose one of {', '.join(CONTEXTS)}")
    if name == "cpc_audio":
        enc = StridedConvEncoder(in_channels, hidden_channels, out_channels, norm=norm)
    else:
        enc = CausalConvEncoder(in_channels, hidden_channels, out_channels, num_layers or 6, kernel_size)
    ctx_width = context_channels or enc.out_channels
    if context == "gru":
        ctx = GRUContext(enc.out_channels, ctx_width, context_layers or 1)
    else:
        ctx = CausalTransformerContext(enc.out_channels, ctx_width, context_layers or 2, heads)
    return SequenceEncoder(enc, ctx, pool_over)
