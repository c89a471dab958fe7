"""A run, end to end: for every seed pretrain, embed with the saved encoder, probe; then summarise.

`train_run` is what `graphcl train` calls; `evaluate_run` / `embed_run` re-use a finished run's
`encoder.pt`; `pretrain` is the same trainer from Python on a user's own `Data`.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.config import config_from_dict, load_config, save_config
from graphcl.evaluate import evaluate_nodes
from graphcl.graph.sparse import graph_inputs
from graphcl.graph.encoders import SPARSE_INPUT_ENCODERS
from graphcl.graph.sparse import sparse_full_batch
from graphcl.train.artifacts import encoder_from_file, read_encoder_file, save_encoder, write_environment
from graphcl.train.build import build_method, build_optimizer, build_scheduler, encoder_spec, method_class
from graphcl.train.checkpoint import CheckpointError, load_torch, save_json, save_torch, seed_everything
from graphcl.train.rundir import MetricsLog, RunDir
from graphcl.train.trainer import Trainer, peak_memory_mb, reset_peak_memory, resolve_device

CHECKPOINT_FORMAT = 1


# -- data ----------------------------------------------------------------------------------------
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


def probe(cfg: DictConfig, embeddings: Tensor, data: Data, dataset: Any, seed: int) -> dict:
    split_idx = dataset.get_idx_split() if cfg.eval.protocol == "ogb" and hasattr(dataset, "get_idx_split") else None
    return evaluate_nodes(embeddings, data, protocol=cfg.eval.protocol, repeats=cfg.eval.repeats, seed=seed,
                          split_idx=split_idx, train_ratio=cfg.eval.train_ratio, val_ratio=cfg.eval.val_ratio,
                          c_grid=list(cfg.eval.c_grid), max_iter=cfg.eval.max_iter)


def summarise(cfg: DictConfig, dataset_name: str, seeds: list[dict], device: torch.device) -> dict:
    """`results.json`: mean +- std (population) over seeds, in percent."""
    def stats(key: str) -> dict:
        values = [100 * s["eval"][key] for s in seeds]
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "per_seed": values}

    first = seeds[0]["eval"]
    return {
        "method": cfg.model.method,
        "dataset": dataset_name,
        "protocol": first["protocol"],
        "metric": first["metric"],
        "seeds": [s["seed"] for s in seeds],
        "test": stats("test"),
        "val": stats("val"),
        "train_seconds": float(sum(s["fit"]["train_seconds"] for s in seeds)),
        "seconds_per_epoch": float(np.mean([s["fit"]["seconds_per_epoch"] for s in seeds])),
        "peak_memory_mb": float(max(s["peak_memory_mb"] for s in seeds)),
        "epochs": [s["fit"]["epochs"] for s in seeds],
        "device": str(device),
    }


def result_line(results: dict) -> str:
    t, v = results["test"], results["val"]
    return (f"{results['method'].upper()} on {results['dataset']} ({results['protocol']} split, "
            f"{len(t['per_seed'])} seeds): test {results['metric']} {t['mean']:.2f} +- {t['std']:.2f} "
            f"(val {v['mean']:.2f} +- {v['std']:.2f}); {results['seconds_per_epoch']:.4f} s/epoch, "
            f"peak memory {results['peak_memory_mb']:.0f} MB")


# -- training ------------------------------------------------------------------------------------
def train_run(cfg: DictConfig, out_dir: str | os.PathLike, *, mode: str = "new",
              dataset: Any = None, log=print) -> dict:
    """Pretrain and evaluate every seed of `cfg` into `out_dir` (mode: new | overwrite | resume)."""
    with RunDir(out_dir, mode) as run:
        checkpoint = None
        if mode == "resume":
            checkpoint = load_torch(run.file("checkpoint.pt"), "checkpoint")
            if checkpoint.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{run.file('checkpoint.pt')} has checkpoint format "
                                      f"{checkpoint.get('format')!r}; expected {CHECKPOINT_FORMAT}")
            cfg = config_from_dict(checkpoint["config"])
        cls = method_class(cfg.model.method)  # fail fast on an unknown method, before loading data
        device = resolve_device(cfg.trainer.device)
        from_registry = dataset is None
        if from_registry:
            dataset = load_run_dataset(cfg)
        # the directory becomes a run only once its inputs are known to be usable
        cfg_dict = OmegaConf.to_container(cfg, resolve=True)
        save_config(cfg, run.file("config.yaml"))
        write_environment(run.file("env.json"), device)
        if cfg.trainer.deterministic and device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)

        data = dataset[0]
        batch = evaluation_batch(cfg, data, device)
        sparse = getattr(cls, "sparse_features", False) and cfg.model.encoder.name in SPARSE_INPUT_ENCODERS
        train_batch = prepare_nodes(data, device, sparse_features=sparse)
        name = registry_name(cfg) if from_registry else getattr(dataset, "name", cfg.data.name)
        builder, spec = saved_encoder(cfg, data.num_features)

        done: list[dict] = list(checkpoint["completed"]) if checkpoint else []
        current = checkpoint.get("current") if checkpoint else None
        metrics = MetricsLog(run.file("metrics.jsonl"), tensorboard_dir=run.file("tensorboard"))
        if checkpoint:  # forget epochs logged after the checkpoint we resume from
            reached = {s["seed"]: math.inf for s in done}
            if current:
                reached[current["seed"]] = current["epoch"]
            metrics.keep(lambda row: row.get("epoch", 0) <= reached.get(row.get("seed"), -1))
        else:
            metrics.keep(lambda row: False)

        def save_checkpoint(current_state: Optional[dict]) -> None:
            save_torch({"kind": "checkpoint", "format": CHECKPOINT_FORMAT, "config": cfg_dict,
                        "completed": done, "current": current_state}, run.file("checkpoint.pt"))

        try:
            for seed in cfg.seeds[len(done):]:
                seed_everything(seed)
                method = build_method(cfg, data.num_features, static_graph=cfg.data.loader == "full").to(device)
                optimizer = build_optimizer(cfg, method.parameters())
                scheduler = build_scheduler(cfg, optimizer)
                trainer = Trainer(
                    method, optimizer, lambda: [train_batch],
                    epochs=cfg.trainer.epochs, patience=cfg.trainer.patience, device=device,
                    amp=cfg.trainer.amp, checkpoint_every=cfg.trainer.checkpoint_every,
                    on_checkpoint=lambda state, seed=seed: save_checkpoint({"seed": seed, **state}),
                    on_epoch=lambda row, seed=seed: metrics.write({"seed": seed, **row}),
                    progress=cfg.trainer.progress, desc=f"{cfg.model.method} seed {seed}", scheduler=scheduler,
                )
                if current is not None and current["seed"] == seed:
                    trainer.load_state_dict(current)
                    current = None
                reset_peak_memory(device)
                fit = trainer.fit()
                peak = peak_memory_mb(device)
                state = {k: v.detach().cpu() for k, v in method.encoder.state_dict().items()}
                # Evaluate exactly what `graphcl eval` will load: the saved spec and weights, uncached.
                encoder = encoder_from_file({"builder": builder, "spec": spec, "seeds": [seed],
                                             "state_dicts": [state]}).to(device)
                result = probe(cfg, embed_nodes(encoder, batch), data, dataset, seed)
                done.append({"seed": seed, "fit": asdict(fit), "eval": result, "peak_memory_mb": peak,
                             "encoder_state": state})
                save_checkpoint(None)
                log(f"seed {seed}: test {100 * result['test']:.2f}, val {100 * result['val']:.2f}, "
                    f"{fit.epochs} epochs, {fit.seconds_per_epoch:.4f} s/epoch")
        finally:
            metrics.close()

        save_encoder(run.file("encoder.pt"), spec, [s["encoder_state"] for s in done], [s["seed"] for s in done],
                     builder=builder,
                     meta={"method": cfg.model.method, "dataset": name})
        results = summarise(cfg, name, done, device)
        save_json(results, run.file("results.json"))
        return results


# -- re-use of a finished run --------------------------------------------------------------------
def _run_config(run_dir: Path) -> DictConfig:
    return load_config(run_dir / "config.yaml")


def evaluate_run(run_dir: str | os.PathLike, device: str = "cpu") -> dict:
    """Re-run the evaluation protocol on every seed's saved encoder; returns a `results.json`-like dict."""
    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    enc = read_encoder_file(run_dir)
    dataset = load_run_dataset(cfg)
    data = dataset[0]
    batch = evaluation_batch(cfg, data, torch.device(device))
    seeds = []
    for seed in enc["seeds"]:
        result = probe(cfg, embed_nodes(encoder_from_file(enc, seed).to(device), batch), data, dataset, seed)
        seeds.append({"seed": seed, "eval": result})
    test = [100 * s["eval"]["test"] for s in seeds]
    val = [100 * s["eval"]["val"] for s in seeds]
    return {"method": cfg.model.method, "dataset": enc.get("dataset", cfg.data.name),
            "protocol": seeds[0]["eval"]["protocol"], "metric": seeds[0]["eval"]["metric"],
            "seeds": enc["seeds"],
            "test": {"mean": float(np.mean(test)), "std": float(np.std(test)), "per_seed": test},
            "val": {"mean": float(np.mean(val)), "std": float(np.std(val)), "per_seed": val}}


def embed_run(run_dir: str | os.PathLike, out: str | os.PathLike, seed: Optional[int] = None,
              device: str = "cpu") -> Tensor:
    """Write the node embeddings of the run's encoder (first seed by default) to `.pt` or `.npy`."""
    from graphcl.train.checkpoint import atomic_write

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    enc = read_encoder_file(run_dir)
    data = load_run_dataset(cfg)[0]
    z = embed_nodes(encoder_from_file(enc, seed).to(device), evaluation_batch(cfg, data, torch.device(device)))
    out = Path(out)
    if out.suffix == ".npy":
        atomic_write(out, lambda f: np.save(f, z.numpy()))
    else:
        save_torch(z, out)
    return z


@dataclass
class Run:
    """What `pretrain` returns: the results, the run directory and the trained encoder of the first seed."""

    results: dict
    run_dir: Path
    encoder: nn.Module = field(repr=False)


class _OneGraph(list):
    """A single user graph presented as a dataset of one."""

    def __init__(self, data: Data, name: str) -> None:
        super().__init__([data])
        self.name = name


def pretrain(data_or_dataset: Any, method: str, out: str | os.PathLike | None = None,
             config: str | os.PathLike | None = None, overrides: tuple[str, ...] = (),
             overwrite: bool = False, **sections: Any) -> Run:
    """Pretrain `method` on a PyG `Data` / dataset (or a networkx graph) with the CLI's trainer.

    Settings come from `config` (a YAML path), then `sections` (e.g. `trainer={"epochs": 50}`), then dotted
    `overrides` (e.g. `("optim.lr=0.01",)`). The run directory defaults to a fresh temporary one.
    """
    import tempfile

    from torch_geometric.utils import from_networkx

    if not isinstance(data_or_dataset, (Data, list)) and hasattr(data_or_dataset, "nodes"):
        data_or_dataset = from_networkx(data_or_dataset)
    dataset = _OneGraph(data_or_dataset, "custom") if isinstance(data_or_dataset, Data) else data_or_dataset
    base = load_config(config, overrides=[f"model.method={method}", "data.name=custom"])
    merged = OmegaConf.merge(OmegaConf.to_container(base), sections)
    cfg = load_config(None, overrides=[f"{k}={v}" for k, v in _dotlist(OmegaConf.to_container(merged))] + list(overrides))
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="graphcl-run-"))
    results = train_run(cfg, out, mode="overwrite" if overwrite else "new", dataset=dataset, log=lambda *_: None)
    from graphcl.train.artifacts import load_encoder

    return Run(results=results, run_dir=out, encoder=load_encoder(out))


def _dotlist(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    import json

    items = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items += _dotlist(value, f"{name}.")
        elif not isinstance(value, dict):
            items.append((name, "null" if value is None else json.dumps(value) if isinstance(value, (list, str)) else value))
    return items
