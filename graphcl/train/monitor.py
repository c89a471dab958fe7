"""Per-epoch representation diagnostics for `metrics.jsonl`: is the encoder aligned, spread out or collapsing?

Every `trainer.diagnostics_every` epochs the run embeds a fixed positive pair -- the task's data and one fixed
view of it (`task.diagnostic_pair`) -- and logs alignment and uniformity (Wang & Isola, 2020), the effective
rank (RankMe) and the per-dimension std of a fixed sample of at most `MAX_ROWS` items; a `warning` names a
collapse (per-dimension std below `trainer.collapse_std / sqrt(D)`, where spread rows have ~1 / sqrt(D)).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from graphcl.evaluate.diagnostics import alignment, effective_rank, feature_std, uniformity

MAX_ROWS = 1024  # SVD and pairwise distances of a 1024-row sample: tens of milliseconds


@torch.no_grad()
def representation_stats(task: Any, encoder: nn.Module, collapse_std: float) -> dict[str, Any]:
    """The diagnostics of `encoder` on `task`'s fixed pair ({} when the task defines none)."""
    pair = getattr(task, "diagnostic_pair", None)
    if pair is None:
        return {}
    was_training = encoder.training
    try:
        z1, z2 = pair(encoder)
    finally:
        encoder.train(was_training)
    if z1.size(0) > MAX_ROWS:
        keep = torch.randperm(z1.size(0), generator=torch.Generator().manual_seed(0))[:MAX_ROWS]
        z1, z2 = z1[keep], z2[keep]
    std = feature_std(z1)
    stats: dict[str, Any] = {"alignment": alignment(z1, z2), "uniformity": uniformity(z1),
                             "effective_rank": effective_rank(z1), "feature_std": std}
    warning = collapse_warning(std, z1.size(1), collapse_std)
    if warning:
        stats["warning"] = warning
    return stats


def collapse_warning(std: float, dim: int, threshold: float) -> Optional[str]:
    """A message when the per-dimension std of normalised embeddings is below `threshold / sqrt(dim)`."""
    if std < threshold / math.sqrt(dim):
        return (f"collapse: per-dimension std of the normalised embeddings is {std:.2e}, below "
                f"{threshold / math.sqrt(dim):.2e} (trainer.collapse_std {threshold} / sqrt({dim}))")
    return None
