"""OGB molecules (ogbg-mol*): a GIN over OGB's atom and bond embeddings, and the `ogb_graph` probe.

`MolGIN` is a PyG `BasicGNN`: `AtomEncoder` turns the 9 integer atom features into `hidden_channels`
embeddings, then every layer is a `GINEConv` whose messages add the bond embedding of its own `BondEncoder`
(`relu(h_j + bond_ij)`). `forward(x [N, 9] long, edge_index [2, E], edge_attr=[E, 3] long)`; without
`edge_attr` every bond embeds as zero. `ogb_graph_probe` fits a logistic regression per task on the frozen
graph embeddings of the official scaffold split's train graphs, picks C on the valid split by ogb's
`Evaluator` metric (ROC-AUC for molbace/molbbbp) and scores the test split with it.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np
import torch
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder, full_atom_feature_dims
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn
from torch_geometric.nn import MLP, GINEConv
from torch_geometric.nn.models.basic_gnn import BasicGNN

__all__ = ["MolGIN", "BondGINEConv", "ogb_graph_probe"]

NUM_ATOM_FEATURES = len(full_atom_feature_dims)  # 9 integer columns in every ogbg-mol* dataset


def _reset_embeddings(module: nn.Module) -> None:
    for emb in module.modules():
        if isinstance(emb, nn.Embedding):
            nn.init.xavier_uniform_(emb.weight)  # as OGB's encoders initialise them


class BondGINEConv(nn.Module):
    """`GINEConv(mlp)` with its own `BondEncoder`: `(x [N, C], edge_index [2, E], edge_attr [E, 3] long) -> [N, C']`."""

    def __init__(self, mlp: nn.Module, channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.bond_encoder = BondEncoder(channels)
        self.conv = GINEConv(mlp, **kwargs)

    def reset_parameters(self) -> None:
        _reset_embeddings(self.bond_encoder)
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor] = None) -> Tensor:
        if edge_attr is None:  # no bond features: every bond embeds as zero
            bonds = x.new_zeros(edge_index.size(1), x.size(1))
        else:
            bonds = self.bond_encoder(edge_attr.long())
        return self.conv(x, edge_index, bonds)


class MolGIN(BasicGNN):
    """PyG's GIN for OGB molecules: atom embeddings in, GINE layers with per-layer bond embeddings.

    `in_channels` must be the 9 raw atom-feature columns; the convs see `hidden_channels` from the first layer
    on. Other arguments as PyG's `GIN` (`act`, `norm`, `jk`, `dropout`, ...).
    """

    supports_edge_weight = False
    supports_edge_attr = True
    reads_edge_attr = True  # graphcl passes the batch's edge_attr (`graph.readout.node_embeddings`)
    supports_norm_batch = False

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 out_channels: Optional[int] = None, **kwargs: Any) -> None:
        if in_channels != NUM_ATOM_FEATURES:
            raise ValueError(f"mol_gin: in_channels is {in_channels}; OGB molecules have {NUM_ATOM_FEATURES} "
                             f"integer atom features (use an ogbg-mol* dataset)")
        super().__init__(hidden_channels, hidden_channels, num_layers, out_channels, **kwargs)
        self.in_channels = in_channels
        self.atom_encoder = AtomEncoder(hidden_channels)

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> BondGINEConv:
        mlp = MLP([in_channels, out_channels, out_channels], act=self.act, act_first=self.act_first,
                  norm=self.norm, norm_kwargs=self.norm_kwargs)
        return BondGINEConv(mlp, in_channels, **kwargs)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        _reset_embeddings(self.atom_encoder)

    def forward(self, x: Tensor, edge_index: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if x.dim() != 2 or x.size(1) != NUM_ATOM_FEATURES or x.is_floating_point():
            raise ValueError(f"mol_gin: x must be [N, {NUM_ATOM_FEATURES}] integer atom features, got "
                             f"{list(x.shape)} {x.dtype}")
        return super().forward(self.atom_encoder(x), edge_index, *args, **kwargs)


def ogb_graph_probe(embeddings: Tensor | np.ndarray, y: Tensor | np.ndarray, split_idx: dict[str, Any],
                    evaluator: Any, c_grid: Sequence[float], max_iter: int = 1000, standardize: bool = True,
                    seed: int = 0) -> dict[str, Any]:
    """Logistic regression per task on `embeddings [G, D]` (train split), C chosen on the valid split.

    `y [G, T]` binary labels, NaN where unknown (ignored, as ogb's `Evaluator` ignores them); `split_idx`:
    `{"train", "valid", "test"}` graph indices; `evaluator`: an ogb `Evaluator` (its `eval_metric` scores
    predicted probabilities). Ties on valid keep the smaller C. Returns `{"metric", "val", "test", "C"}`.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    train, valid, test = (np.asarray(split_idx[k]).reshape(-1) for k in ("train", "valid", "test"))
    if not c_grid:
        raise ValueError("ogb_graph_probe: key 'eval.c_grid' is empty")
    if standardize:  # train rows only, so valid/test never shape the features
        x = StandardScaler().fit(x[train]).transform(x)
    metric = evaluator.eval_metric

    def score(rows: np.ndarray, pred: np.ndarray) -> float:
        return float(evaluator.eval({"y_true": y[rows], "y_pred": pred[rows]})[metric])

    best: Optional[dict] = None
    for c in sorted(c_grid):
        pred = np.zeros_like(y)
        for task in range(y.shape[1]):  # a loop over the dataset's few tasks
            rows = train[~np.isnan(y[train, task])]
            labels = y[rows, task].astype(int)
            if np.unique(labels).size < 2:  # a task with one class in train: a constant score
                pred[:, task] = labels.mean() if labels.size else 0.5
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # large C: judged on valid like the others
                model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x[rows], labels)
            pred[:, task] = model.predict_proba(x)[:, 1]
        val = score(valid, pred)
        if best is None or val > best["val"]:  # strict: ties keep the smaller C
            best = {"metric": metric, "val": val, "test": score(test, pred), "C": float(c)}
    return best
