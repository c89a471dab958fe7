"""Node-level task: one graph, full-batch training, node embeddings probed on node splits."""
from __future__ import annotations

from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.data.validate import check_node_labels, validate_dataset
from graphcl.evaluate import evaluate_nodes
from graphcl.graph.encoders import SPARSE_INPUT_ENCODERS
from graphcl.graph.sparse import graph_inputs, sparse_full_batch
from graphcl.graph.views import mask_feature_columns
from graphcl.train.build import build_method, encoder_spec, method_class


def load_run_dataset(cfg: DictConfig):
    from graphcl.data import load_dataset

    return load_dataset(cfg.data.name, root=cfg.data.root, features=cfg.data.features,
                        normalize_features=cfg.data.normalize_features)


def registry_name(cfg: DictConfig) -> str:
    """The dataset's name as the registry spells it (`Computers` for `amazon-computers`), for results and
    `encoder.pt`: the loaders' own `name` differs (PyG's Amazon lower-cases it; WikiCS has none)."""
    from graphcl.data import get_spec

    return get_spec(cfg.data.name, cfg.data.root).name


def prepare_nodes(data: Data, device: torch.device, sparse_features: bool = True) -> Data:
    """The full-batch graph as encoder calls see it, on `device`: a CSR adjacency `adj_t` (message passing
    as one sparse-dense product) beside `edge_index`, and CSR features when they are sparse enough and
    `sparse_features` (a method opts in with a `sparse_features = True` class attribute when its views work
    on CSR features, as DGI's and GRACE's do). Evaluation uses `evaluation_batch`."""
    keep = {"x", "edge_index", "edge_weight"}
    slim = Data(**{k: v for k, v in data.items() if k in keep}, num_nodes=data.num_nodes)
    return sparse_full_batch(slim, max_density=0.1 if sparse_features else 0.0).to(device)


def saved_encoder(cfg: DictConfig, in_channels: int) -> tuple[str, dict[str, Any]]:
    """(builder, keyword arguments) with which `load_encoder` rebuilds `method.encoder`: `encoder_spec` and the
    "graph" builder, unless the method class names its own `encoder_builder` (a key of `artifacts.BUILDERS`)
    and the `model.params` it takes (`encoder_params`), e.g. MVGRL's two-view encoder and its diffusion."""
    cls = method_class(cfg.model.method)
    params = OmegaConf.to_container(cfg.model.params, resolve=True)
    extra = {k: params[k] for k in getattr(cls, "encoder_params", ()) if k in params}
    return getattr(cls, "encoder_builder", "graph"), {**encoder_spec(cfg, in_channels), **extra}


def evaluation_batch(cfg: DictConfig, data: Data, device: torch.device) -> Data:
    """The graph the saved encoder is evaluated on: CSR features where the encoder accepts them."""
    return prepare_nodes(data, device, sparse_features=cfg.model.encoder.name in SPARSE_INPUT_ENCODERS)


@torch.no_grad()
def embed_nodes(encoder: nn.Module, batch: Data) -> Tensor:
    """Frozen node embeddings `[N, D]` on CPU, as `graphcl eval` / `embed` compute them."""
    encoder.eval()
    return encoder(*graph_inputs(batch)).float().cpu()


class NodeTask:
    """The graph of `cfg.data` (or a user's `dataset`), trained full-batch, probed by `cfg.eval.protocol`."""

    def __init__(self, cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> None:
        self.cfg, self.device = cfg, device
        self.name = registry_name(cfg) if dataset is None else getattr(dataset, "name", cfg.data.name)
        self.dataset = load_run_dataset(cfg) if dataset is None else dataset
        if dataset is not None:  # a user's own graph: check it before it reaches the encoder
            validate_dataset(dataset, level="node")
        self.data = self.dataset[0]
        check_node_labels(self.data, cfg.eval.protocol, cfg.eval.train_ratio, cfg.eval.val_ratio)
        self.eval_batch = evaluation_batch(cfg, self.data, device)
        sparse = getattr(method_class(cfg.model.method), "sparse_features", False) \
            and cfg.model.encoder.name in SPARSE_INPUT_ENCODERS
        self.train_batch = prepare_nodes(self.data, device, sparse_features=sparse)

    def build_method(self) -> nn.Module:
        return build_method(self.cfg, self.data.num_features, static_graph=self.cfg.data.loader == "full")

    def batches(self) -> list[Data]:
        return [self.train_batch]

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        return saved_encoder(self.cfg, self.data.num_features)

    def embed(self, encoder: nn.Module) -> Tensor:
        return embed_nodes(encoder, self.eval_batch)

    def diagnostic_pair(self, encoder: nn.Module) -> tuple[Tensor, Tensor]:
        """The node embeddings and those of one fixed view (20 % of the feature columns masked; the adjacency
        object kept, so nothing cached per graph, e.g. MVGRL's diffusion, is recomputed)."""
        batch = self.eval_batch
        x, adj = graph_inputs(batch)
        view = mask_feature_columns(x, 0.2, torch.Generator(device=x.device).manual_seed(0))
        encoder.eval()
        return embed_nodes(encoder, batch), encoder(view, adj).float().cpu()

    def evaluate(self, encoder: nn.Module, seed: int) -> dict:
        cfg = self.cfg
        split_idx = self.dataset.get_idx_split() if cfg.eval.protocol == "ogb" and hasattr(self.dataset, "get_idx_split") else None
        return evaluate_nodes(self.embed(encoder), self.data, protocol=cfg.eval.protocol, repeats=cfg.eval.repeats,
                              seed=seed, split_idx=split_idx, train_ratio=cfg.eval.train_ratio,
                              val_ratio=cfg.eval.val_ratio, c_grid=list(cfg.eval.c_grid), max_iter=cfg.eval.max_iter)
