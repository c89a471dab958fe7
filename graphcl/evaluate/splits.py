"""Node-classification splits: Planetoid public masks, random train/val/test, official OGB indices."""
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

Split = tuple[Tensor, Tensor, Tensor]
PROTOCOLS = ("public", "random", "ogb")


def node_splits(
    data: Any,
    protocol: str,
    repeats: int = 1,
    seed: int = 0,
    train_ratio: float = 0.1,
    val_ratio: float = 0.1,
    split_idx: Mapping[str, Tensor] | None = None,
) -> list[Split]:
    """Return a list of ``(train_idx, val_idx, test_idx)`` LongTensors indexing the ``data.num_nodes`` nodes.

    - ``"public"``: from ``data.train_mask / val_mask / test_mask`` ``[N]``; one split, ``repeats`` is ignored.
      Masks of shape ``[N, S]`` (e.g. WikiCS) give one split per column; a ``[N]`` mask is shared by all.
    - ``"random"``: ``repeats`` uniform splits of ``train_ratio`` / ``val_ratio`` / rest (BGRL: 10/10/80);
      split ``r`` is drawn from ``torch.Generator().manual_seed(seed + r)``.
    - ``"ogb"``: the ``split_idx`` dict of ``dataset.get_idx_split()`` (keys train/valid/test); one split.
    """
    if protocol == "public":
        return _mask_splits(data)
    if protocol == "random":
        return [_random_split(data.num_nodes, train_ratio, val_ratio, seed + r) for r in range(repeats)]
    if protocol == "ogb":
        return [_ogb_split(split_idx)]
    raise ValueError(f"node_splits: unknown protocol {protocol!r}, expected one of {PROTOCOLS}")


def _mask_splits(data: Any) -> list[Split]:
    masks = []
    for name in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(data, name, None)
        if mask is None:
            raise ValueError(f"node_splits: protocol 'public' needs data.{name}, which is missing")
        masks.append(mask.bool().reshape(mask.shape[0], -1))  # [N, S]
    num_splits = max(m.shape[1] for m in masks)
    # A single-column mask (e.g. WikiCS's shared test mask) applies to every split.
    return [
        tuple(m[:, s if m.shape[1] > 1 else 0].nonzero().view(-1) for m in masks)
        for s in range(num_splits)
    ]


def _random_split(num_nodes: int, train_ratio: float, val_ratio: float, seed: int) -> Split:
    if not (0 < train_ratio and 0 < val_ratio and train_ratio + val_ratio < 1):
        raise ValueError(
            f"node_splits: need 0 < train_ratio, 0 < val_ratio, train_ratio + val_ratio < 1; "
            f"got {train_ratio}, {val_ratio}"
        )
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = round(train_ratio * num_nodes), round(val_ratio * num_nodes)
    train, val, test = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    return train.sort().values, val.sort().values, test.sort().values


def _ogb_split(split_idx: Mapping[str, Tensor] | None) -> Split:
    if split_idx is None:
        raise ValueError("node_splits: protocol 'ogb' needs split_idx (dataset.get_idx_split())")
    missing = [key for key in ("train", "valid", "test") if key not in split_idx]
    if missing:
        raise ValueError(f"node_splits: split_idx lacks {missing}; expected keys train/valid/test")
    return tuple(torch.as_tensor(split_idx[key]).long().view(-1) for key in ("train", "valid", "test"))
