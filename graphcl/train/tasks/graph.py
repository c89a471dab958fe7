"""Graph-level task: a dataset of graphs, mini-batches of whole graphs, graph embeddings probed by `svm_cv`.

The dataset is collated once into one `Batch` on the device; an epoch's mini-batches are gathers from it
(`take_graphs`), with no per-graph collation. A method may prepare the collated graphs once (e.g. MVGRL's
per-graph diffusion) through a `prepare_graphs(batch, **params) -> batch` class method.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from graphcl.config import ConfigError
from graphcl.core.distributed import world_size
from graphcl.data.validate import check_graph_labels, validate_dataset
from graphcl.evaluate import svm_cv
from graphcl.graph.readout import graph_embeddings
from graphcl.graph.views import MaskNodeFeatures, take_graphs
from graphcl.train.build import build_method, method_class
from graphcl.train.distributed import min_batch, same_order, shard
from graphcl.train.tasks.node import load_run_dataset, registry_name, saved_encoder

KEEP = ("x", "edge_index", "edge_attr", "y")  # the attributes a graph-level method reads
EMBED_BATCH = 256  # graphs per forward pass when embedding the whole dataset


class GraphTask:
    def __init__(self, cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> None:
        self.cfg, self.device = cfg, device
        self.name = registry_name(cfg) if dataset is None else getattr(dataset, "name", cfg.data.name)
        if dataset is not None:  # a user's own graphs: check them before they are collated
            validate_dataset(dataset, level="graph")
        dataset = load_run_dataset(cfg) if dataset is None else dataset
        if len(dataset) == 0:
            raise ValueError(f"dataset {self.name!r} holds no graphs")
        graphs = [dataset[i] for i in range(len(dataset))]  # feature transforms run once, here
        slim = [Data(**{k: g[k] for k in KEEP if k in g and g[k] is not None}, num_nodes=g.num_nodes)
                for g in graphs]
        self.graphs = Batch.from_data_list(slim).to(device)
        cls = method_class(cfg.model.method)
        prepare = getattr(cls, "prepare_graphs", None)
        if prepare is not None:
            self.graphs = prepare(self.graphs, **self._params(getattr(cls, "prepare_params", ())))
        self.num_features = self.graphs.num_features
        self.labels = self.graphs.y.view(len(slim), -1)[:, 0] if "y" in self.graphs else None
        self.ogb_split = None
        if cfg.eval.protocol == "ogb_graph":  # OGB's official split, scored by its Evaluator
            if not hasattr(dataset, "get_idx_split"):
                raise ValueError(f"key 'eval.protocol' is 'ogb_graph' but dataset {self.name!r} has no official "
                                 f"split (use an ogbg-* dataset)")
            self.ogb_split = {k: torch.as_tensor(v).cpu().numpy() for k, v in dataset.get_idx_split().items()}
        elif cfg.eval.protocol != "svm_cv":
            raise ValueError(f"key 'eval.protocol' is {cfg.eval.protocol!r}; graph-level runs use svm_cv or ogb_graph")
        self.svm = {"kernel": "linear", "standardize": True} if self.ogb_split is None else {"standardize": True}
        for key, value in OmegaConf.to_container(cfg.eval.params, resolve=True).items():
            if key not in self.svm:
                raise ValueError(f"unknown key 'eval.params.{key}' for {cfg.eval.protocol}; it takes "
                                 f"{', '.join(self.svm)}")
            self.svm[key] = value
        check_graph_labels(self.labels, cfg.eval.protocol, cfg.eval.folds, self.name)
        if cfg.data.batch_size > len(slim):
            raise ConfigError(f"key 'data.batch_size' is {cfg.data.batch_size} but dataset {self.name!r} "
                              f"has only {len(slim)} graphs")
        if world_size() > 1 and cfg.data.batch_size < min_batch():
            raise ConfigError(f"key 'data.batch_size' is {cfg.data.batch_size}; {world_size()} processes need at "
                              f"least {min_batch()} graphs per batch (two per process)")

    def _params(self, keys) -> dict:
        params = OmegaConf.to_container(self.cfg.model.params, resolve=True)
        return {k: params[k] for k in keys if k in params}

    def build_method(self) -> nn.Module:
        return build_method(self.cfg, self.num_features)

    @property
    def steps_per_epoch(self) -> int:
        n, size = self.graphs.num_graphs, self.cfg.data.batch_size
        return n // size + (n % size >= min_batch())  # a last batch of one graph (per rank) is dropped

    def batches(self) -> Iterator[Batch]:
        """One epoch: the graphs in a random order (global RNG), `data.batch_size` at a time; a last batch of a
        single graph is dropped (batch statistics over one graph are undefined).

        Under several processes the order is rank 0's, each rank takes its contiguous share of every batch (its
        graphs, hence its node count, differ from the other ranks'), and a last batch with fewer than two graphs
        per rank is dropped."""
        n, size = self.graphs.num_graphs, self.cfg.data.batch_size
        order = same_order(torch.randperm(n).to(self.device))
        for start in range(0, n, size):
            index = order[start:start + size]
            if index.numel() >= min_batch() or n == 1:
                yield take_graphs(self.graphs, shard(index))

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        return saved_encoder(self.cfg, self.num_features)

    @torch.no_grad()
    def embed(self, encoder: nn.Module) -> Tensor:
        """`[G, D]` graph embeddings of the whole dataset, in dataset order, on CPU."""
        encoder.eval()
        pool = self._params(("pool",)).get("pool", "sum")
        n = self.graphs.num_graphs
        parts = [graph_embeddings(encoder, take_graphs(self.graphs, torch.arange(i, min(i + EMBED_BATCH, n),
                                                                                   device=self.device)), pool)
                 for i in range(0, n, EMBED_BATCH)]
        return torch.cat(parts).float().cpu()

    @torch.no_grad()
    def diagnostic_pair(self, encoder: nn.Module) -> tuple[Tensor, Tensor]:
        """Graph embeddings of up to `EMBED_BATCH` graphs (a fixed sample) and of one fixed view of them (the
        features of 20 % of the nodes masked)."""
        encoder.eval()
        n = self.graphs.num_graphs
        sample = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:EMBED_BATCH].to(self.device)
        batch = take_graphs(self.graphs, sample)
        view = MaskNodeFeatures(0.2, torch.Generator(device=self.device).manual_seed(0))(batch)
        pool = self._params(("pool",)).get("pool", "sum")
        return (graph_embeddings(encoder, batch, pool).float().cpu(),
                graph_embeddings(encoder, view, pool).float().cpu())

    def evaluate(self, encoder: nn.Module, seed: int) -> dict:
        cfg = self.cfg
        if self.labels is None:
            raise ValueError(f"dataset {self.name!r} has no graph labels (y) for the {cfg.eval.protocol} protocol")
        if self.ogb_split is not None:
            return self._evaluate_ogb(encoder, seed)
        result = svm_cv(self.embed(encoder).numpy(), self.labels.cpu().numpy(), folds=cfg.eval.folds,
                        c_grid=list(cfg.eval.c_grid), seed=seed, n_jobs=cfg.eval.jobs, **self.svm)
        return {"protocol": "svm_cv", "metric": "accuracy", "test": result["mean"], "val": result["val"],
                "test_std": result["std"], "per_fold": result["per_fold"], "C": result["C"]}

    def _evaluate_ogb(self, encoder: nn.Module, seed: int) -> dict:
        """`ogb_graph`: logistic regression per task on the train split, C chosen on valid by ogb's Evaluator."""
        from ogb.graphproppred import Evaluator

        from graphcl.graph.molecules import ogb_graph_probe

        y = self.graphs.y.view(self.graphs.num_graphs, -1).float().cpu().numpy()
        result = ogb_graph_probe(self.embed(encoder).numpy(), y, self.ogb_split, Evaluator(self.name),
                                 c_grid=list(self.cfg.eval.c_grid), max_iter=self.cfg.eval.max_iter, seed=seed,
                                 **self.svm)
        return {"protocol": "ogb_graph", "metric": result["metric"], "test": result["test"], "val": result["val"],
                "C": result["C"]}
