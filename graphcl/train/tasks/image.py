"""Image task: a labelled image dataset (MNIST, Fashion-MNIST, CIFAR-10, digits), shuffled mini-batches of
whole images on the device (views are drawn inside each method's `forward`), frozen backbone features probed by
a linear classifier (C chosen on a validation split carved from train) and a weighted kNN.

Config keys read: `data.{name, root, batch_size}`, `model.{method, encoder.{name, hidden_channels, options},
heads, params}`, `augment.params` (`ImageViews` arguments), `eval.{c_grid, max_iter, params}` with eval.params
`knn_k` (200), `knn_temperature` (0.07), `val_fraction` (0.1), `embed_batch` (1024).
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from graphcl.core.distributed import world_size
from graphcl.evaluate.probes import knn_probe, linear_probe
from graphcl.train.distributed import same_order, shard
from graphcl.vision.backbones import BACKBONES, build_backbone
from graphcl.vision.data import ImageData, load_images
from graphcl.vision.views import ImageViews

EVAL_DEFAULTS = {"knn_k": 200, "knn_temperature": 0.07, "val_fraction": 0.1, "embed_batch": 1024}
# model.heads key -> constructor argument of the image methods
HEAD_ARGS = {"projector_hidden": "proj_hidden", "projector_out": "proj_out", "predictor_hidden": "pred_hidden"}


class _Epoch:
    """One epoch of `(images [B, C, H, W] float in [0, 1], indices [B])` on the device; `len()` = batches. Under
    several processes each rank gets its `B / world_size` consecutive images of every global batch."""

    def __init__(self, images: Tensor, batch_size: int, order: Tensor) -> None:
        self.images, self.batch_size, self.order = images, batch_size, order

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(len(self)):
            idx = shard(self.order[i * self.batch_size:(i + 1) * self.batch_size])  # this rank's share
            yield self.images[idx].float().div_(255), idx


def _view_kwargs(params: dict, data: ImageData) -> dict:
    accepted = [p for p in inspect.signature(ImageViews).parameters]
    for key in params:
        if key not in accepted:
            raise ValueError(f"unknown key 'augment.params.{key}' for image views; accepted: {', '.join(accepted)}")
    return {"size": data.image_size, **params}


class ImageTask:
    def __init__(self, cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        data = load_images(cfg.data.name, cfg.data.root) if dataset is None else dataset
        if not isinstance(data, ImageData):
            raise ValueError(f"an image run's dataset must be a graphcl.vision.data.ImageData, "
                             f"got {type(data).__name__}")
        self.data, self.name = data, data.name
        encoder = cfg.model.encoder
        if encoder.name.lower() not in BACKBONES:
            raise ValueError(f"key 'model.encoder.name' is {encoder.name!r}; image methods take one of "
                             f"{', '.join(BACKBONES)}")
        mean, std = data.stats()
        self.spec = {"name": encoder.name.lower(), "in_channels": data.channels, "width": int(encoder.hidden_channels),
                     "mean": mean, "std": std, **OmegaConf.to_container(encoder.options, resolve=True)}
        self.view_kwargs = _view_kwargs(OmegaConf.to_container(cfg.augment.params, resolve=True), data)
        ImageViews(**self.view_kwargs)  # fail now, not per seed, on bad values
        self.eval_params = dict(EVAL_DEFAULTS)
        for key, value in OmegaConf.to_container(cfg.eval.params, resolve=True).items():
            if key not in EVAL_DEFAULTS:
                raise ValueError(f"unknown key 'eval.params.{key}' for image runs; it takes {', '.join(EVAL_DEFAULTS)}")
            self.eval_params[key] = value
        self.batch_size = int(cfg.data.batch_size)
        if not 2 <= self.batch_size <= len(data.train_x):
            raise ValueError(f"key 'data.batch_size' is {self.batch_size}; it must lie in [2, {len(data.train_x)}] "
                             f"(the {self.name} train images), batch losses need two or more images")
        if self.batch_size % world_size():  # equal shares: methods that average over their own rows stay exact
            raise ValueError(f"key 'data.batch_size' is {self.batch_size}; with {world_size()} processes it must be "
                             f"a multiple of {world_size()}")
        self.steps_per_epoch = len(data.train_x) // self.batch_size  # the last partial batch is dropped
        self.train_images = data.train_x.to(self.device)  # uint8 on the device: 47 MB for Fashion-MNIST

    # -- training ----------------------------------------------------------------------------------
    def build_method(self) -> nn.Module:
        """A fresh method around a fresh backbone: `cls(encoder, feature_dim, **model.params)`, plus the task's
        `views`, `dataset_size`, `steps_per_epoch`, `total_steps` and `model.heads` where the class takes them."""
        from graphcl.train.build import method_class, method_params

        cls = method_class(self.cfg.model.method)
        encoder = build_backbone(**self.spec)
        params = method_params(self.cfg)
        accepted = inspect.signature(cls).parameters
        heads = OmegaConf.to_container(self.cfg.model.heads, resolve=True)
        extra = {"views": ImageViews(**self.view_kwargs), "dataset_size": len(self.data.train_x),
                 "steps_per_epoch": self.steps_per_epoch,
                 "total_steps": self.steps_per_epoch * int(self.cfg.trainer.epochs),
                 **{arg: heads[key] for key, arg in HEAD_ARGS.items() if heads.get(key) is not None}}
        extra = {k: v for k, v in extra.items() if k in accepted and k not in params}
        return cls(encoder, encoder.feature_dim, **extra, **params).to(self.device)

    def batches(self) -> _Epoch:
        """One epoch in a random order, drawn from a generator seeded by torch's global RNG (so a seeded run
        and a resumed one repeat it; under several processes, rank 0's order); `data.batch_size` images per
        global batch, the last partial batch dropped."""
        seed = int(torch.randint(0, 2**62, ()))
        order = torch.randperm(len(self.train_images), generator=torch.Generator().manual_seed(seed))
        return _Epoch(self.train_images, self.batch_size, same_order(order.to(self.device)))

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        return "vision", dict(self.spec)

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, encoder: nn.Module, images: Tensor) -> Tensor:
        """Frozen features `[N, D]` (float32, CPU) of uint8 images `[N, C, H, W]`, `embed_batch` at a time."""
        encoder.eval()
        step = int(self.eval_params["embed_batch"])
        parts = [encoder(images[i:i + step].to(self.device).float().div_(255)).float().cpu()
                 for i in range(0, len(images), step)]
        return torch.cat(parts)

    def diagnostic_pair(self, encoder: nn.Module) -> tuple[Tensor, Tensor]:
        """Features of a fixed sample of test images and of their mirror images (a fixed, deterministic view)."""
        n = len(self.data.test_x)
        sample = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:1024]
        images = self.data.test_x[sample]
        return self.features(encoder, images), self.features(encoder, images.flip(-1))

    def embed(self, encoder: nn.Module) -> Tensor:
        """Features of the test images, `[N_test, D]`, in file order."""
        return self.features(encoder, self.data.test_x)

    def val_split(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, val rows) of the train split: a stratified `val_fraction` held out to choose C."""
        from sklearn.model_selection import train_test_split

        y = self.data.train_y.numpy()
        return train_test_split(np.arange(len(y)), test_size=self.eval_params["val_fraction"], stratify=y,
                                random_state=seed)

    def evaluate(self, encoder: nn.Module, seed: int) -> dict:
        """Linear probe (C by val accuracy, then test) and kNN (train features vote for test images)."""
        return probe_features(self.features(encoder, self.data.train_x), self.data.train_y,
                              self.features(encoder, self.data.test_x), self.data.test_y, *self.val_split(seed),
                              c_grid=list(self.cfg.eval.c_grid), max_iter=int(self.cfg.eval.max_iter), seed=seed,
                              knn_k=int(self.eval_params["knn_k"]),
                              knn_temperature=float(self.eval_params["knn_temperature"]))


def probe_features(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, fit_rows: np.ndarray,
                   val_rows: np.ndarray, c_grid: list[float], max_iter: int = 1000, seed: int = 0,
                   knn_k: int = 200, knn_temperature: float = 0.07) -> dict:
    """The image protocol on given features: `linear_probe` fit on `fit_rows` of train, C chosen on `val_rows`,
    scored on test; `knn_probe` with all train rows as neighbours. Accuracies in [0, 1]."""
    x = torch.cat([train_x, test_x]).double().numpy()
    y = torch.cat([train_y, test_y]).numpy()
    test_rows = np.arange(len(train_x), len(x))
    lin = linear_probe(x, y, fit_rows, val_rows, test_rows, c_grid=c_grid, max_iter=max_iter, seed=seed)
    knn = knn_probe(train_x, train_y, test_x, test_y, k=knn_k, temperature=knn_temperature)
    return {"protocol": "linear", "metric": "accuracy", "test": lin["test"], "val": lin["val"], "C": lin["C"],
            "knn": knn}
