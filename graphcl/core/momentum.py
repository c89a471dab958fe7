"""Momentum (EMA) target networks and the cosine schedule of their momentum (BYOL, BGRL, MoCo, DINO)."""
import copy
import math
from collections.abc import Iterable
from itertools import zip_longest

import torch
from torch import Tensor, nn

__all__ = ["ema_update", "cosine_schedule", "copy_as_target"]


def _describe(name: str | None, t: Tensor | None) -> str:
    return "nothing" if t is None else f"{name!r} {list(t.shape)}"


def _pair(
    online: Iterable[tuple[str, Tensor]], target: Iterable[tuple[str, Tensor]], kind: str
) -> tuple[list[Tensor], list[Tensor]]:
    """Match named tensors one to one; raise naming the first pair that differs in name or shape."""
    sources, targets = [], []
    for (n_on, t_on), (n_tg, t_tg) in zip_longest(online, target, fillvalue=(None, None)):
        if n_on != n_tg or t_on.shape != t_tg.shape:
            raise ValueError(
                f"online and target {kind}s differ at {n_on or n_tg!r}: "
                f"online has {_describe(n_on, t_on)}, target has {_describe(n_tg, t_tg)}"
            )
        sources.append(t_on)
        targets.append(t_tg)
    return sources, targets


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """In place: `target_p = m * target_p + (1 - m) * online_p` for every parameter; buffers are copied.

    Buffers (e.g. BatchNorm running statistics) are copied rather than averaged, as in BYOL/BGRL.
    `m = 1` leaves the parameters unchanged, `m = 0` copies them exactly.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"m must lie in [0, 1], got {m}")
    sources, targets = _pair(online.named_parameters(), target.named_parameters(), "parameter")
    if targets:  # foreach ops reject empty lists
        torch._foreach_lerp_(targets, sources, 1.0 - m)  # one fused kernel per dtype/device group
    sources, targets = _pair(online.named_buffers(), target.named_buffers(), "buffer")
    if targets:
        torch._foreach_copy_(targets, sources)


def cosine_schedule(step: int, total: int, start: float, end: float) -> float:
    """Cosine ramp from `start` at step 0 to `end` at `step >= total` (step is clamped to [0, total]).

    `end - (end - start) * (cos(pi * step / total) + 1) / 2`; BYOL's momentum is `cosine_schedule(k, K, 0.996, 1.0)`.
    """
    if total < 0:
        raise ValueError(f"total must be non-negative, got {total}")
    if total == 0:  # nothing to ramp over
        return float(end)
    step = min(max(step, 0), total)
    return end - (end - start) * (math.cos(math.pi * step / total) + 1) / 2


def copy_as_target(module: nn.Module) -> nn.Module:
    """A deep copy of `module` with gradients switched off: the EMA target of a momentum encoder."""
    return copy.deepcopy(module).requires_grad_(False)
