"""Node-level task: one graph, trained full-batch or on neighbour-sampled mini-batches (`data.loader`), node
embeddings (one forward, or layer-wise over node chunks: `eval.inference`) probed on node splits."""
from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.config import ConfigError
from graphcl.data.validate import check_node_labels, validate_dataset
from graphcl.evaluate import evaluate_nodes
from graphcl.graph.encoders import SPARSE_INPUT_ENCODERS
from graphcl.graph.sampling import layerwise_embed, neighbor_loader
from graphcl.graph.sparse import graph_inputs, sparse_full_batch, to_sparse_features
from graphcl.graph.views import mask_feature_columns
from graphcl.train.build import build_method, encoder_spec, method_class
from graphcl.train.distributed import min_batch, same_order, shard


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


def inference_mode(cfg: DictConfig) -> str:
    """`eval.inference` with "auto" resolved: "layerwise" for neighbour-sampled runs, else "full"."""
    if cfg.eval.inference != "auto":
        return cfg.eval.inference
    return "layerwise" if cfg.data.loader == "neighbor" else "full"


def check_sampling(cfg: DictConfig, num_nodes: int) -> None:
    """One-line `ConfigError`s for a neighbour-sampled run or layer-wise inference the method cannot take."""
    cls, method = method_class(cfg.model.method), cfg.model.method
    if cfg.data.loader == "neighbor":
        if not getattr(cls, "neighbor_sampling", False):
            raise ConfigError(f"key 'data.loader' is 'neighbor' but method {method!r} trains full-batch only; "
                              f"use data.loader=full")
        encoder_layers = cfg.model.encoder.num_layers
        hops = encoder_layers + getattr(cls, "decoder_layers", 0)
        given = list(cfg.data.num_neighbors)
        if len(given) != hops:
            what = f"{encoder_layers} encoder layer(s)" + (f" + {hops - encoder_layers} decoder layer(s)"
                                                           if hops > encoder_layers else "")
            raise ConfigError(f"key 'data.num_neighbors' is {given} ({len(given)} hop(s)) but method {method!r} "
                              f"passes messages over {hops} hop(s) ({what}): give one fan-out per hop")
        if not min_batch() <= cfg.data.batch_size <= num_nodes:
            raise ConfigError(f"key 'data.batch_size' is {cfg.data.batch_size}; neighbour sampling needs "
                              f"{min_batch()} (two per process) to {num_nodes} (the graph's nodes) seed nodes per batch")
    if inference_mode(cfg) == "layerwise":
        if getattr(cls, "encoder_builder", "graph") != "graph":
            raise ConfigError(f"key 'eval.inference' is 'layerwise' but method {method!r} saves an encoder of its "
                              f"own, which embeds full-batch only; use eval.inference=full")
        jk = cfg.model.encoder.options.get("jk")
        if jk not in (None, "last"):
            raise ConfigError(f"key 'eval.inference' is 'layerwise' but model.encoder.options.jk is {jk!r}; "
                              f"layer-wise inference needs jk null or 'last' (or use eval.inference=full)")


class NodeTask:
    """The graph of `cfg.data` (or a user's `dataset`), trained full-batch or on `NeighborLoader` mini-batches
    (`data.loader`), embedded by one forward or layer-wise (`eval.inference`), probed by `cfg.eval.protocol`."""

    def __init__(self, cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> None:
        self.cfg, self.device = cfg, device
        self.name = registry_name(cfg) if dataset is None else getattr(dataset, "name", cfg.data.name)
        self.dataset = load_run_dataset(cfg) if dataset is None else dataset
        if dataset is not None:  # a user's own graph: check it before it reaches the encoder
            validate_dataset(dataset, level="node")
        self.data = self.dataset[0]
        check_node_labels(self.data, cfg.eval.protocol, cfg.eval.train_ratio, cfg.eval.val_ratio)
        check_sampling(cfg, self.data.num_nodes)
        x = self.data.x.to_dense() if self.data.x.layout != torch.strided else self.data.x
        # what sampling and layer-wise inference read, on CPU
        self.graph = Data(x=x, edge_index=self.data.edge_index, num_nodes=self.data.num_nodes)
        self.layerwise = inference_mode(cfg) == "layerwise"
        self.eval_batch = None if self.layerwise else evaluation_batch(cfg, self.data, device)
        self.sparse_features = getattr(method_class(cfg.model.method), "sparse_features", False) \
            and cfg.model.encoder.name in SPARSE_INPUT_ENCODERS
        self.sampled = cfg.data.loader == "neighbor"
        if self.sampled:
            # the last partial batch is dropped, as the image task does: a batch of one seed has no statistics
            self.steps_per_epoch = self.data.num_nodes // cfg.data.batch_size
            # the sampler (a CSC copy of the graph) is built once; each epoch loads its own seed order through it
            self.sampler = neighbor_loader(self.graph, cfg.data.num_neighbors, cfg.data.batch_size).node_sampler
        else:
            self.train_batch = prepare_nodes(self.data, device, sparse_features=self.sparse_features)
            self.steps_per_epoch = 1

    def build_method(self) -> nn.Module:
        return build_method(self.cfg, self.data.num_features, static_graph=self.cfg.data.loader == "full")

    def batches(self) -> Iterable[Data]:
        """One epoch: the whole graph, or `NeighborLoader` subgraphs around every node as a seed, in a fresh
        random order (torch's global RNG, so a seeded or resumed run samples the same batches)."""
        if not self.sampled:
            return [self.train_batch]
        seeds = self._epoch_seeds()
        loader = neighbor_loader(self.graph, self.cfg.data.num_neighbors, len(seeds) // self.steps_per_epoch,
                                 shuffle=False, input_nodes=seeds, sampler=self.sampler)
        return (self._sampled_batch(batch) for batch in loader)

    def _epoch_seeds(self) -> Tensor:
        """This process's seed nodes of one epoch, in order: a random order of all nodes (rank 0's under several
        processes), cut into global batches of `data.batch_size` (a last partial one dropped), of which every
        process takes its contiguous share (`shard`), so the processes together step through one global batch."""
        size = self.cfg.data.batch_size
        order = same_order(torch.randperm(self.data.num_nodes))[: self.steps_per_epoch * size]
        mine = shard(torch.arange(size))  # this process's columns of every global batch
        return order.view(self.steps_per_epoch, size)[:, mine].reshape(-1)

    def _sampled_batch(self, batch: Data) -> Data:
        """A sampled subgraph on the device, with CSR features where the method and encoder take them (bag-of-words
        rows: the first layer's `X W` then costs O(nnz), as in full-batch training)."""
        batch = batch.to(self.device)
        if self.sparse_features:
            batch.x = to_sparse_features(batch.x)
        return batch

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        return saved_encoder(self.cfg, self.data.num_features)

    def embed(self, encoder: nn.Module) -> Tensor:
        """Frozen node embeddings `[N, D]` on CPU."""
        if self.layerwise:
            return layerwise_embed(encoder, self.graph, self.cfg.eval.inference_batch_size).float()
        return embed_nodes(encoder, self.eval_batch)

    def diagnostic_pair(self, encoder: nn.Module) -> tuple[Tensor, Tensor]:
        """The node embeddings and those of one fixed view (20 % of the feature columns masked; the adjacency
        object kept, so nothing cached per graph, e.g. MVGRL's diffusion, is recomputed)."""
        if self.layerwise:
            g = self.graph
            view = Data(x=mask_feature_columns(g.x, 0.2, torch.Generator().manual_seed(0)), edge_index=g.edge_index,
                        num_nodes=g.num_nodes)
            return self.embed(encoder), layerwise_embed(encoder, view, self.cfg.eval.inference_batch_size).float()
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
