"""Checks of user-supplied graphs and datasets, before they reach a trainer: one-line errors naming the field.

`graphcl.pretrain(data, ...)` and `train_run(..., dataset=...)` take a user's own PyG `Data`, list of `Data` or
dataset. A malformed graph would otherwise fail deep inside a GNN layer (or, worse, not fail: an out-of-range
node id in a collated batch silently points into the next graph). `validate_graph` checks one graph,
`validate_dataset` a whole input, `check_node_labels` / `check_graph_labels` that the evaluation protocol has
what it needs, all before training starts.

What is fine and must stay fine: isolated nodes, self-loops, duplicate edges, graphs without edges and
single-node graphs (in a dataset of graphs).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ["InvalidDataError", "check_graph_labels", "check_node_labels", "validate_dataset", "validate_graph"]

PROBES = {"public": "linear probe", "random": "linear probe", "ogb": "linear probe", "svm_cv": "svm_cv",
          "ogb_graph": "ogb_graph"}


class InvalidDataError(ValueError):
    """A graph, dataset or their labels cannot be used as given; the message names the field and the value."""


def _shape(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def _values(t: Tensor) -> Tensor:
    """The stored values of a dense or sparse (COO / CSR) tensor."""
    if t.layout == torch.strided:
        return t
    return t.coalesce().values() if t.layout == torch.sparse_coo else t.values()


def _require_finite(t: Tensor, field: str) -> None:
    if not t.is_floating_point() and not t.is_complex():
        return
    values = _values(t)
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        kind = "NaN" if bool(torch.isnan(values).any()) else "Inf"
        first = bad.nonzero()[0].tolist() if t.layout == torch.strided else None
        where = f" (first at index {first[0] if len(first) == 1 else tuple(first)})" if first is not None else ""
        raise InvalidDataError(f"{field} holds {int(bad.sum())} non-finite value(s), {kind} among them{where}; "
                               f"replace or drop them before training")


def validate_graph(data: Any, name: str = "data", level: Optional[str] = None) -> None:
    """Raise `InvalidDataError` (one line naming `name.<field>`) unless `data` is a usable PyG graph.

    Checks: `x` a floating `[num_nodes, F]` tensor of finite values (dense or sparse); `edge_index` a `torch.long`
    `[2, E]` tensor with node ids in `[0, num_nodes)`; `edge_weight` `[E]` and `edge_attr` `[E, ...]` finite; with
    `level="node"`, `y` and the split masks have `num_nodes` rows. Isolated nodes, self-loops, duplicate edges,
    no edges (an empty `[2, 0]` edge_index) and a single node are all fine.
    """
    from torch_geometric.data import Data

    if not isinstance(data, Data):
        raise InvalidDataError(f"{name} must be a torch_geometric.data.Data graph, got {type(data).__name__}")
    x = data.x if "x" in data else None
    if x is None:
        raise InvalidDataError(f"{name} has no node features ({name}.x); give it some, e.g. with "
                               f"torch_geometric.transforms.OneHotDegree or Constant")
    if not isinstance(x, Tensor):
        raise InvalidDataError(f"{name}.x must be a tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise InvalidDataError(f"{name}.x has shape {_shape(x)}; node features must be 2-D [num_nodes, "
                               f"num_features]" + (f" (use {name}.x.view(-1, 1))" if x.dim() == 1 else ""))
    if not x.is_floating_point():
        raise InvalidDataError(f"{name}.x has dtype {x.dtype}; node features must be floating point "
                               f"({name}.x = {name}.x.float())")
    num_nodes = data.num_nodes
    if num_nodes != x.size(0):
        raise InvalidDataError(f"{name}.x has {x.size(0)} rows but {name}.num_nodes is {num_nodes}")
    if num_nodes == 0:
        raise InvalidDataError(f"{name} has no nodes")
    if x.size(1) == 0:
        raise InvalidDataError(f"{name}.x has shape {_shape(x)}: no feature columns")
    _require_finite(x, f"{name}.x")

    edge_index = data.edge_index if "edge_index" in data else None
    if edge_index is None:
        raise InvalidDataError(f"{name} has no edge_index; a graph without edges needs an empty one, "
                               f"torch.empty(2, 0, dtype=torch.long)")
    if not isinstance(edge_index, Tensor):
        raise InvalidDataError(f"{name}.edge_index must be a tensor, got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        hint = f" (transpose it: {name}.edge_index.t())" if edge_index.dim() == 2 and edge_index.size(1) == 2 else ""
        raise InvalidDataError(f"{name}.edge_index has shape {_shape(edge_index)}; it must be [2, num_edges]{hint}")
    if edge_index.dtype != torch.long:
        raise InvalidDataError(f"{name}.edge_index has dtype {edge_index.dtype}; it must be torch.long "
                               f"({name}.edge_index = {name}.edge_index.long())")
    num_edges = edge_index.size(1)
    if num_edges:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0:
            raise InvalidDataError(f"{name}.edge_index holds node id {low}; node ids must be in [0, {num_nodes})")
        if high >= num_nodes:
            raise InvalidDataError(f"{name}.edge_index holds node id {high}, but {name} has {num_nodes} "
                                   f"node{'s' if num_nodes != 1 else ''}")

    for field in ("edge_weight", "edge_attr"):
        value = data[field] if field in data else None
        if not isinstance(value, Tensor):
            continue
        if value.dim() == 0 or value.size(0) != num_edges or (field == "edge_weight" and value.dim() != 1):
            want = f"[{num_edges}]" if field == "edge_weight" else f"[{num_edges}, ...]"
            raise InvalidDataError(f"{name}.{field} has shape {_shape(value)}; with {num_edges} edges it must be "
                                   f"{want}")
        _require_finite(value, f"{name}.{field}")

    if level == "node":
        for field in ("y", "train_mask", "val_mask", "test_mask"):
            value = data[field] if field in data else None
            if isinstance(value, Tensor) and (value.dim() == 0 or value.size(0) != num_nodes):
                raise InvalidDataError(f"{name}.{field} has shape {_shape(value)}; it needs one row per node "
                                       f"({num_nodes})")


def validate_dataset(dataset: Any, level: str = "graph") -> None:
    """Raise `InvalidDataError` unless `dataset` (a list of `Data` or a PyG dataset) holds usable graphs.

    `level="node"`: exactly one graph (node-level methods train on one graph), named `data` in messages;
    `level="graph"`: one or more graphs, each with a label `y` for the graph-classification probe, named
    `dataset[i]`.
    """
    try:
        size = len(dataset)
    except TypeError:
        raise InvalidDataError(f"expected a torch_geometric Data, a list of Data or a dataset, "
                               f"got {type(dataset).__name__}") from None
    if size == 0:
        raise InvalidDataError("the dataset is empty: it holds no graphs")
    if level == "node":
        if size > 1:
            raise InvalidDataError(f"node-level methods train on one graph, but the dataset holds {size}; "
                                   f"pass the graph itself (or merge the graphs into one Data)")
        validate_graph(dataset[0], "data", level="node")
        return
    widths = set()
    for i in range(size):
        graph = dataset[i]
        validate_graph(graph, f"dataset[{i}]", level="graph")
        widths.add(graph.x.size(1))
        if len(widths) > 1:
            raise InvalidDataError(f"dataset[{i}].x has {graph.x.size(1)} feature columns, other graphs have "
                                   f"{min(widths - {graph.x.size(1)})}; every graph needs the same number")
        y = graph.y if "y" in graph else None
        if not isinstance(y, Tensor) or y.numel() == 0:
            raise InvalidDataError(f"dataset[{i}] has no label (dataset[{i}].y), which the graph-classification "
                                   f"probe needs")


def check_node_labels(data: Any, protocol: str, train_ratio: float = 0.1, val_ratio: float = 0.1,
                      split_idx: Optional[dict] = None, name: str = "data") -> None:
    """Raise `InvalidDataError` unless the node probe of `protocol` can run on `data`: labels `y` for every node,
    and non-empty train / val / test splits (masks for "public", enough nodes for the "random" ratios)."""
    probe = PROBES.get(protocol, protocol)
    y = data.y if "y" in data else None
    if not isinstance(y, Tensor):
        raise InvalidDataError(f"{name} has no node labels ({name}.y), which the {probe} of eval.protocol "
                               f"'{protocol}' needs")
    if protocol == "public":
        for split in ("train_mask", "val_mask", "test_mask"):
            mask = data[split] if split in data else None
            if not isinstance(mask, Tensor):
                raise InvalidDataError(f"eval.protocol 'public' needs {name}.{split}, which {name} lacks; set "
                                       f"eval.protocol=random for random splits")
            columns = mask.bool().reshape(mask.size(0), -1)
            if not bool(columns.any(dim=0).all()):
                raise InvalidDataError(f"{name}.{split} selects no nodes: the {split[:-5]} split is empty")
        train = data.train_mask.bool().reshape(data.num_nodes, -1)[:, 0]
        classes = torch.unique(y.reshape(y.size(0), -1)[train, 0])
        if classes.numel() < 2:
            raise InvalidDataError(f"the train split of {name} holds a single class ({classes.tolist()}); the "
                                   f"{probe} needs two or more")
    elif protocol == "random":
        n = data.num_nodes
        sizes = {"train": round(train_ratio * n), "val": round(val_ratio * n)}
        sizes["test"] = n - sizes["train"] - sizes["val"]
        for split, count in sizes.items():
            if count < 1:
                raise InvalidDataError(f"the random {split} split of {name}'s {n} node{'s' if n != 1 else ''} is "
                                       f"empty (eval.train_ratio {train_ratio}, eval.val_ratio {val_ratio})")
    elif protocol == "ogb" and split_idx is not None:
        for split in ("train", "valid", "test"):
            if split in split_idx and len(split_idx[split]) == 0:
                raise InvalidDataError(f"the official {split} split of {name} is empty")


def check_graph_labels(labels: Optional[Tensor], protocol: str, folds: int, name: str) -> None:
    """Raise `InvalidDataError` unless `svm_cv` can run: graph labels, two classes or more, and at least `folds`
    graphs of every class (stratified folds)."""
    if labels is None:
        raise InvalidDataError(f"dataset {name!r} has no graph labels (y), which the {PROBES.get(protocol, protocol)}"
                               f" protocol needs")
    if protocol != "svm_cv":
        return
    classes, counts = torch.unique(labels.cpu(), return_counts=True)
    if classes.numel() < 2:
        raise InvalidDataError(f"dataset {name!r} has a single class ({classes.tolist()}); the svm_cv protocol "
                               f"needs two or more")
    if int(counts.min()) < folds:
        small = classes[counts.argmin()].item()
        raise InvalidDataError(f"eval.folds is {folds} but class {small} of dataset {name!r} has only "
                               f"{int(counts.min())} graphs; stratified folds need eval.folds <= "
                               f"{int(counts.min())}")

