"""From a validated config to the objects of a run: method (with its encoder) and optimiser."""
from __future__ import annotations

import difflib
import inspect
import math
from functools import partial
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch_geometric.nn import GATConv, GATv2Conv
from torch_geometric.nn.dense.linear import Linear as PygLinear

from graphcl.config import ConfigError
from graphcl.config.schema import CHOICES
from graphcl.core.checks import ArgumentError
from graphcl.graph.encoders import build_encoder, output_channels
from graphcl.train.registry import METHODS

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def method_class(name: str) -> type[nn.Module]:
    key = name.lower()
    if key not in METHODS:
        raise ConfigError(f"key 'model.method' names unknown method {name!r}{_suggest(key, list(METHODS))}; "
                          f"choose one of {', '.join(METHODS)}")
    from graphcl.core.lazy import resolve

    return resolve(METHODS[key])


def encoder_spec(cfg: DictConfig, in_channels: int) -> dict[str, Any]:
    """Keyword arguments of `build_encoder`; saved in `encoder.pt` so `load_encoder` rebuilds the same model."""
    spec = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    return {"in_channels": int(in_channels), **spec}


def method_params(cfg: DictConfig) -> dict[str, Any]:
    """`model.params`, checked against the keyword arguments of the method's constructor."""
    cls = method_class(cfg.model.method)
    params = OmegaConf.to_container(cfg.model.params, resolve=True)
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("encoder", "hidden_channels")]
    for key in params:
        if key not in accepted:
            raise ConfigError(f"unknown key 'model.params.{key}' for method {cfg.model.method!r}"
                              f"{_suggest(key, accepted)}")
    return params


def initialise(method: nn.Module, scheme: str) -> nn.Module:
    """`model.init` on a built method: "default" leaves it; "xavier_uniform" gives every Linear layer (PyTorch's
    and PyG's) a Glorot-uniform weight and a zero bias; "dgl" starts every GAT conv as DGL's `GATConv` does
    (weight and attention vectors Xavier-normal with ReLU gain, zero bias: PyG's are Glorot-uniform, sqrt(2)
    narrower). Refused for a method with a momentum target: the target was copied from the online network when
    the method was built, and would no longer equal it."""
    if scheme == "default":
        return method
    if scheme not in CHOICES["model.init"]:
        raise ConfigError(f"key 'model.init' must be one of {', '.join(CHOICES['model.init'])}; got {scheme!r}")
    if any(not p.requires_grad for p in method.parameters()):
        raise ConfigError(f"key 'model.init' is {scheme!r}, but {type(method).__name__} holds a momentum target "
                          "copied from its online network when built; use model.init=default")
    gain = nn.init.calculate_gain("relu")
    for m in method.modules():
        if scheme == "xavier_uniform" and isinstance(m, (nn.Linear, PygLinear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif scheme == "dgl" and isinstance(m, (GATConv, GATv2Conv)):
            for name, p in m.named_parameters(recurse=True):
                if name.rpartition(".")[2] == "bias":
                    nn.init.zeros_(p)
                else:  # lin(_src/_dst).weight, att(_src/_dst)
                    nn.init.xavier_normal_(p, gain=gain)
    return method


def build_method(cfg: DictConfig, in_channels: int, static_graph: bool = False) -> nn.Module:
    """The (graph) method of `cfg.model` around a fresh PyG encoder for `in_channels` input features.

    `static_graph`: the graph never changes during training (full-batch, and the method does not perturb
    edges), so GCN layers may cache their normalised adjacency.
    """
    cls = method_class(cfg.model.method)
    spec = encoder_spec(cfg, in_channels)
    cache = static_graph and getattr(cls, "static_graph", False) and spec["name"] == "gcn"
    try:
        encoder = build_encoder(**spec, **({"cached": True} if cache else {}))
    except TypeError as e:  # an option the PyG model does not take
        raise ConfigError(f"key 'model.encoder.options' is not accepted by the {spec['name']} encoder: {e}") from None
    except ValueError as e:  # settings the encoder cannot combine
        raise ConfigError(f"key 'model.encoder': {e}") from None
    params = method_params(cfg)
    try:
        return cls(encoder, output_channels(encoder), **params)
    except ArgumentError as e:  # the method rejected one of its arguments: name its config key
        if e.argument.split(".")[0] in params:
            raise ConfigError(f"key 'model.params.{e.argument}' {e.problem}") from None
        raise ConfigError(f"method {cfg.model.method!r}: {e}") from None
    except ValueError as e:  # e.g. an encoder the method cannot use
        raise ConfigError(f"method {cfg.model.method!r} cannot be built from this config: {e}") from None


def build_optimizer(cfg: DictConfig, params) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.optim.name](params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


def build_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer):
    """The per-epoch learning-rate schedule of `optim.scheduler` (None for "none"). "cosine" multiplies the lr
    by (1 + cos(pi e / E)) / 2 at epoch e of E = `trainer.epochs` (GraphMAE's schedule); with W =
    `optim.warmup_epochs` > 0 by e / W for e < W, then by the cosine over the remaining E - W epochs (BGRL's)."""
    if cfg.optim.scheduler == "none":
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, epochs=cfg.trainer.epochs,
                                                                warmup=cfg.optim.warmup_epochs))


def warmup_cosine(epoch: int, epochs: int, warmup: int = 0) -> float:
    """The lr factor at 0-based `epoch`: linear from 0 over `warmup` epochs, then a cosine from 1 to 0 (a
    warm-up as long as the run stays at the top: there is no decay left)."""
    if epoch < warmup or warmup >= epochs:
        return min(epoch / warmup, 1.0)
    return (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup))) / 2
