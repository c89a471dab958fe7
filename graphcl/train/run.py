"""A run, end to end: for every seed pretrain, embed with the saved encoder, probe; then summarise.

`train_run` is what `graphcl train` calls; `evaluate_run` / `embed_run` re-use a finished run's
`encoder.pt`; `pretrain` is the same trainer from Python on a user's own `Data`.

Under torchrun (or inside a caller's process group) every rank trains and only rank 0 touches the run
directory: it writes config, metrics, checkpoints, encoder.pt and results.json, evaluates and prints, while
the other ranks wait for it; every rank returns rank 0's results.
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

from graphcl.config import ConfigError, config_from_dict, load_config, save_config, with_seeds
from graphcl.core.distributed import world_size
from graphcl.train.artifacts import encoder_from_file, read_encoder_file, save_encoder, write_environment
from graphcl.train.build import build_optimizer, build_scheduler, initialise, method_class
from graphcl.train.checkpoint import (CheckpointError, check_same_run, load_torch, save_json, save_torch,
                                      seed_everything)
from graphcl.train.distributed import (is_main, launched, local_device, main_first, own_view_stream,
                                       process_group_from_env, results_from_main, wait_for_main)
from graphcl.train.monitor import representation_stats
from graphcl.train.rundir import MetricsLog, RunDir
from graphcl.train.tasks import get_task
from graphcl.train.trainer import Trainer, peak_memory_mb, reset_peak_memory, resolve_device

CHECKPOINT_FORMAT = 1


def shown(result: dict, key: str) -> float:
    """A protocol's figure as tables show it: accuracies and AUCs in percent, errors (mse, mae) as they are."""
    return float(result[key]) * (1 if result["metric"] in ("mse", "mae") else 100)


def spread(values: list[float]) -> dict:
    """Mean +- std (population) of per-seed figures, and the figures."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "per_seed": values}


def stats(seeds: list[dict], key: str) -> dict:
    """Mean +- std (population) over seeds of `shown` figures."""
    return spread([shown(s["eval"], key) for s in seeds])


def summarise(cfg: DictConfig, dataset_name: str, seeds: list[dict], device: torch.device) -> dict:
    """`results.json`: mean +- std over seeds (accuracies in percent)."""

    first = seeds[0]["eval"]
    return {
        "method": cfg.model.method,
        "dataset": dataset_name,
        "protocol": first["protocol"],
        "metric": first["metric"],
        "seeds": [s["seed"] for s in seeds],
        "test": stats(seeds, "test"),
        "val": stats(seeds, "val"),
        # the protocol's other figures (kNN accuracy, speaker accuracy, per-horizon errors...), same scale
        "extra": {k: stats(seeds, k) for k, v in first.items()
                  if k not in ("test", "val") and isinstance(v, (int, float)) and not isinstance(v, bool)},
        "train_seconds": float(sum(s["fit"]["train_seconds"] for s in seeds)),
        "seconds_per_epoch": float(np.mean([s["fit"]["seconds_per_epoch"] for s in seeds])),
        "peak_memory_mb": float(max(s["peak_memory_mb"] for s in seeds)),
        "epochs": [s["fit"]["epochs"] for s in seeds],
        "device": str(device),
        "world_size": world_size(),  # processes that trained (torchrun --nproc_per_node)
    }


def test_line(results: dict) -> str:
    """"DGI on Cora (public split, 10 seeds): test accuracy 81.83 +- 0.47": the head of every printed result."""
    t, protocol = results["test"], results["protocol"]
    where = f"{protocol} split" if protocol in ("public", "random", "ogb") else protocol
    return (f"{results['method'].upper()} on {results['dataset']} ({where}, {len(t['per_seed'])} seeds): "
            f"test {results['metric']} {t['mean']:.2f} +- {t['std']:.2f}")


def result_line(results: dict) -> str:
    v = results["val"]
    return (f"{test_line(results)} (val {v['mean']:.2f} +- {v['std']:.2f}); "
            f"{results['seconds_per_epoch']:.4f} s/epoch, peak memory {results['peak_memory_mb']:.0f} MB")


# -- training ------------------------------------------------------------------------------------
def train_run(cfg: DictConfig, out_dir: str | os.PathLike, *, mode: str = "new",
              dataset: Any = None, log=print, seeds: Optional[list[int]] = None) -> dict:
    """Pretrain and evaluate every seed of `cfg` into `out_dir` (mode: new | overwrite | resume).

    `seeds` (resume only): the run's seeds followed by more; a finished run is extended by the new ones.
    Under torchrun this opens (and at the end destroys) the process group; rank 0 alone writes `out_dir`.
    """
    if seeds is not None and mode != "resume":
        raise ValueError("train_run: seeds extends a resumed run (mode='resume'); set cfg.seeds otherwise")
    with process_group_from_env():
        if is_main():
            with RunDir(out_dir, mode) as run:
                return results_from_main(_train_seeds(cfg, run.file, mode, dataset, log, write=True, seeds=seeds))
        # other ranks read a resumed checkpoint and never write: rank 0 holds the directory's lock
        return results_from_main(_train_seeds(cfg, lambda name: Path(out_dir) / name, mode, dataset,
                                              lambda *_: None, write=False, seeds=seeds))


def _appended(cfg: DictConfig, seeds: list[int]) -> DictConfig:
    """`cfg` with `seeds`, which must be its own seeds followed by more (checked as any config's seeds are)."""
    old = list(cfg.seeds)
    if seeds[:len(old)] != old:
        raise ConfigError(f"key 'seeds' is {seeds} but the run's seeds are {old}: resuming can only append seeds "
                          f"(e.g. seeds={old + [max(old) + 1]})")
    return with_seeds(cfg, seeds)


def _train_seeds(cfg: Optional[DictConfig], file, mode: str, dataset: Any, log, write: bool,
                 seeds: Optional[list[int]] = None) -> Optional[dict]:
    """`train_run`'s body on one rank; `file(name)` is a path in the run directory; returns the results where
    `write` (rank 0), else None."""
    checkpoint = None
    if mode == "resume":
        checkpoint = load_torch(file("checkpoint.pt"), "checkpoint")
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{file('checkpoint.pt')} has checkpoint format "
                                  f"{checkpoint.get('format')!r}; expected {CHECKPOINT_FORMAT}")
        cfg = config_from_dict(checkpoint["config"])
        check_same_run(checkpoint["config"], file("config.yaml"), file("checkpoint.pt"))
        if seeds is not None:
            cfg = _appended(cfg, seeds)
            if write and len(seeds) > len(checkpoint["completed"]):
                # the summary of fewer seeds would pass for the extended run's (config.yaml lists them all);
                # the finished seeds stay in the checkpoint, and results.json returns when the run ends
                file("results.json").unlink(missing_ok=True)
    method_class(cfg.model.method)  # fail fast on an unknown method, before loading data
    device = local_device(resolve_device(cfg.trainer.device))
    with main_first():  # rank 0 processes the dataset into the cache before the others read it
        task = get_task(cfg, device, dataset)
    initialise(task.build_method(), cfg.model.init)  # a bad model.params or model.init fails here, before
    # the directory becomes a run: it becomes one only once its inputs are known to be usable
    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    if write:
        save_config(cfg, file("config.yaml"))
        write_environment(file("env.json"), device)
    if cfg.trainer.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    builder, spec = task.encoder_spec()

    done: list[dict] = list(checkpoint["completed"]) if checkpoint else []
    current = checkpoint.get("current") if checkpoint else None
    metrics = MetricsLog(file("metrics.jsonl"), tensorboard_dir=file("tensorboard")) if write else None
    if metrics is not None and checkpoint:  # forget epochs logged after the checkpoint we resume from
        reached = {s["seed"]: math.inf for s in done}
        if current:
            reached[current["seed"]] = current["epoch"]
        metrics.keep(lambda row: row.get("epoch", 0) <= reached.get(row.get("seed"), -1))
    elif metrics is not None:
        metrics.keep(lambda row: False)

    def save_checkpoint(current_state: Optional[dict]) -> None:
        save_torch({"kind": "checkpoint", "format": CHECKPOINT_FORMAT, "config": cfg_dict,
                    "completed": done, "current": current_state}, file("checkpoint.pt"))

    try:
        for seed in cfg.seeds[len(done):]:
            seed_everything(seed)  # the same on every rank: every rank builds the same model
            method = initialise(task.build_method(), cfg.model.init).to(device)
            optimizer = build_optimizer(cfg, method.parameters())
            scheduler = build_scheduler(cfg, optimizer)
            trainer = Trainer(
                method, optimizer, task.batches,
                epochs=cfg.trainer.epochs, patience=cfg.trainer.patience, device=device,
                amp=cfg.trainer.amp, checkpoint_every=cfg.trainer.checkpoint_every,
                on_checkpoint=(lambda state, seed=seed: save_checkpoint({"seed": seed, **state})) if write else None,
                on_epoch=(lambda row, seed=seed, method=method: metrics.write(
                    {"seed": seed, **row, **epoch_diagnostics(cfg, task, method, row["epoch"])})) if write else None,
                progress=cfg.trainer.progress, desc=f"{cfg.model.method} seed {seed}", scheduler=scheduler,
                steps_per_epoch=getattr(task, "steps_per_epoch", None),
            )
            if current is not None and current["seed"] == seed:
                trainer.load_state_dict(current)
                current = None
            own_view_stream()
            reset_peak_memory(device)
            fit = trainer.fit()
            peak = peak_memory_mb(device)
            state = {k: v.detach().cpu() for k, v in method.encoder.state_dict().items()}
            result = None
            if write:  # rank 0 evaluates exactly what `graphcl eval` will load: the saved spec and weights
                encoder = encoder_from_file({"builder": builder, "spec": spec, "seeds": [seed],
                                             "state_dicts": [state]}).to(device)
                result = task.evaluate(encoder, seed)
            done.append({"seed": seed, "fit": asdict(fit), "eval": result, "peak_memory_mb": peak,
                         "encoder_state": state})
            if write:
                save_checkpoint(None)
                log(f"seed {seed}: test {shown(result, 'test'):.2f}, val {shown(result, 'val'):.2f}, "
                    f"{fit.epochs} epochs, {fit.seconds_per_epoch:.4f} s/epoch")
            wait_for_main()
    finally:
        if metrics is not None:
            metrics.close()
    if not write:
        return None
    save_encoder(file("encoder.pt"), spec, [s["encoder_state"] for s in done], [s["seed"] for s in done],
                 builder=builder, meta={"method": cfg.model.method, "dataset": task.name})
    results = summarise(cfg, task.name, done, device)
    save_json(results, file("results.json"))
    return results


def epoch_diagnostics(cfg: DictConfig, task, method: nn.Module, epoch: int) -> dict:
    """Representation diagnostics every `trainer.diagnostics_every` epochs and at the last epoch ({} otherwise)."""
    every = cfg.trainer.diagnostics_every
    if not every or (epoch % every and epoch != cfg.trainer.epochs):
        return {}
    return representation_stats(task, method.encoder, cfg.trainer.collapse_std)


# -- re-use of a finished run --------------------------------------------------------------------
def _run_config(run_dir: Path) -> DictConfig:
    return load_config(run_dir / "config.yaml")


def evaluate_run(run_dir: str | os.PathLike, device: str = "cpu") -> dict:
    """Re-run the evaluation protocol on every seed's saved encoder; returns a `results.json`-like dict."""
    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    enc = read_encoder_file(run_dir)
    task = get_task(cfg, torch.device(device))
    seeds = [{"seed": seed, "eval": task.evaluate(encoder_from_file(enc, seed).to(device), seed)}
             for seed in enc["seeds"]]
    return {"method": cfg.model.method, "dataset": enc.get("dataset", cfg.data.name),
            "protocol": seeds[0]["eval"]["protocol"], "metric": seeds[0]["eval"]["metric"],
            "seeds": enc["seeds"], "test": stats(seeds, "test"), "val": stats(seeds, "val")}


def embed_run(run_dir: str | os.PathLike, out: str | os.PathLike, seed: Optional[int] = None,
              device: str = "cpu") -> Tensor:
    """Write the embeddings (nodes, graphs, images or sequences) of the run's encoder (first seed by default) to `.pt` or `.npy`."""
    from graphcl.train.checkpoint import atomic_write

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    enc = read_encoder_file(run_dir)
    z = get_task(cfg, torch.device(device)).embed(encoder_from_file(enc, seed).to(device))
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
    if out is None and launched():  # each process would make its own temporary directory
        raise ValueError("pretrain under torchrun needs out=, a run directory every process can read")
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
