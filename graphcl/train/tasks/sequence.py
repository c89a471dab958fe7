"""Sequence task: CPC pretraining on UCR/UEA classification sets, FSDD audio or an ETT series, and the
protocol of each on the frozen encoder (`ts_svm`, FSDD probes, ETT ridge forecasting).

Config keys read: `data.{name, root, batch_size}`, `model.encoder.{name, hidden_channels, out_channels,
num_layers, options}` (options: context, context_channels, context_layers, heads, pool_over, kernel_size,
norm), `model.params` (CPC keyword arguments), `augment.params` (SequenceView keyword arguments) and
`eval.params` (protocol settings: see `EVAL_DEFAULTS`).
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from graphcl.core.distributed import world_size
from graphcl.data.sequences import ETT_SPLITS, SequenceSet, load_ett, load_fsdd, load_ucr_uea, standardize
from graphcl.evaluate.sequence import ett_result, ett_ridge, fsdd_probes, lag_windows, ts_svm
from graphcl.sequence import CPC, SequenceBatch, SequenceView, build_sequence_encoder
from graphcl.train.distributed import min_batch, same_order, shard

ENCODER_OPTIONS = ("context", "context_channels", "context_layers", "heads", "pool_over", "kernel_size", "norm")
EVAL_DEFAULTS = {
    "batch_size": 64,       # sequences per forward pass when embedding
    "max_length": None,     # FSDD: truncate clips to this many samples (None: keep all)
    "features": "S",        # ETT: S = the target column only (univariate), M = all 7 columns
    "target": "OT",         # ETT target column
    "window": 200,          # ETT: steps of the window whose representation forecasts (also the training windows)
    "horizons": [24, 48, 168, 336, 720],
    "ett_pool": "max",      # ETT: max (contexts max-pooled over the window), last (the last context) or both
    "shots": 10, "draws": 5,  # FSDD few-shot protocol
}


def _params(cfg: DictConfig, key: str) -> dict:
    value = OmegaConf.select(cfg, key, default=None)
    return {} if value is None else OmegaConf.to_container(value, resolve=True)


def _trim(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the trailing steps that are padding in every sequence of the batch."""
    length = max(int(mask.sum(1).max()), 1)
    return x[..., :length], mask[:, :length]


class SequenceTask:
    """Loads `cfg.data.name` (fsdd, etth1, etth2 or a UCR/UEA name) once per run, standardised per channel with
    training statistics; `dataset` may instead be a user's own (train, test) pair of `SequenceSet`s."""

    def __init__(self, cfg: DictConfig, device: torch.device, dataset: Optional[Any] = None) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        self.eval_params = {**EVAL_DEFAULTS, **_params(cfg, "eval.params")}
        unknown = sorted(set(self.eval_params) - set(EVAL_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown key 'eval.params.{unknown[0]}' for the sequence task; "
                             f"known: {', '.join(EVAL_DEFAULTS)}")
        name, root = str(cfg.data.name), cfg.data.root
        if dataset is not None:
            self.kind, self.name = "ts", getattr(dataset, "name", name)
            self.train, self.test = dataset
        elif name.lower() == "fsdd":
            self.kind, self.name = "fsdd", "FSDD"
            self.train, self.test = load_fsdd(root, self.eval_params["max_length"])
        elif name.lower() in ("etth1", "etth2"):
            self.kind, self.name = "ett", name.upper().replace("ETTH", "ETTh")
            self._load_ett(name, root)
        else:
            self.kind = "ts"
            self.train, self.test = load_ucr_uea(name, root)
            self.name = name
        if self.kind != "ett":
            standardize(self.train, self.test)
        self.train_x, self.train_mask = self.train.x.to(self.device), self.train.mask.to(self.device)
        if world_size() > 1 and min(int(cfg.data.batch_size), len(self.train_x)) < min_batch():
            raise ValueError(f"key 'data.batch_size' is {cfg.data.batch_size} ({len(self.train_x)} training "
                             f"sequences); {world_size()} processes need batches of at least {min_batch()}")

    def _load_ett(self, name: str, root) -> None:
        p = self.eval_params
        values, columns = load_ett(name, root)
        if p["target"] not in columns:
            raise ValueError(f"eval.params.target {p['target']!r} is not a column of {name} ({', '.join(columns)})")
        if p["features"] not in ("S", "M"):
            raise ValueError(f"eval.params.features must be 'S' or 'M', got {p['features']!r}")
        a, b = ETT_SPLITS["train"]
        end = ETT_SPLITS["test"][1]
        values = values[:end]
        mean, std = values[a:b].mean(0), values[a:b].std(0).clamp_min(1e-8)  # training segment only
        values = (values - mean) / std
        target = columns.index(p["target"])
        self.series = (values[:, [target]] if p["features"] == "S" else values).T.contiguous()  # [C, T]
        self.target = values[:, target]
        w = int(p["window"])
        ends = torch.arange(w - 1, b, max(w // 4, 1))  # overlapping training windows inside the train segment
        x = lag_windows(self.series, w, ends)
        self.train = SequenceSet(x, torch.ones(len(x), w, dtype=torch.bool), torch.zeros(len(x), dtype=torch.long))
        self.test = None

    # -- the protocol train_run calls ------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        enc = self.cfg.model.encoder
        options = _params(self.cfg, "model.encoder.options")
        unknown = sorted(set(options) - set(ENCODER_OPTIONS))
        if unknown:
            raise ValueError(f"unknown key 'model.encoder.options.{unknown[0]}' for encoder {enc.name!r}; "
                             f"known: {', '.join(ENCODER_OPTIONS)}")
        spec = {"name": str(enc.name), "in_channels": self.in_channels, "hidden_channels": int(enc.hidden_channels),
                "out_channels": None if enc.out_channels is None else int(enc.out_channels),
                "num_layers": int(enc.num_layers), **options}
        return "sequence", spec

    def build_method(self) -> nn.Module:
        encoder = build_sequence_encoder(**self.encoder_spec()[1])
        view = SequenceView(**_params(self.cfg, "augment.params"))
        return CPC(encoder, view=view, **_params(self.cfg, "model.params")).to(self.device)

    def batches(self) -> Iterator[SequenceBatch]:
        """One epoch of `data.batch_size` sequences per global batch in a random order (seeded from the global
        RNG; under several processes rank 0's order, each rank taking its contiguous share of every batch)."""
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))  # from the seeded global RNG
        order = same_order(torch.randperm(len(self.train_x), generator=g).to(self.device))
        size = int(self.cfg.data.batch_size)
        for i in range(0, len(order), size):
            idx = order[i: i + size]
            if len(idx) < min_batch() and len(order) > 1:  # a lone sequence (per rank) has no in-batch negatives
                continue
            idx = shard(idx)
            yield SequenceBatch(*_trim(self.train_x[idx], self.train_mask[idx]))

    @torch.no_grad()
    def represent(self, encoder: nn.Module, x: Tensor, mask: Tensor) -> Tensor:
        """Pooled representations `[N, F]` (CPU float32), length-sorted batches trimmed of common padding."""
        encoder.eval()
        order = mask.sum(1).argsort()
        out = torch.empty(len(x), encoder.out_channels)
        bs = int(self.eval_params["batch_size"])
        for i in range(0, len(x), bs):
            idx = order[i: i + bs]
            xb, mb = _trim(x[idx], mask[idx])
            out[idx] = encoder.pool(xb.to(self.device), mb.to(self.device)).float().cpu()
        return out

    @torch.no_grad()
    def _ett_features(self, encoder: nn.Module) -> Tensor:
        """Representation of the window ending at every t (rows t < window - 1 are zeros) -> `[T, F]`."""
        w, how = int(self.eval_params["window"]), self.eval_params["ett_pool"]
        encoder.eval()
        t_all = self.series.shape[1]
        ends = torch.arange(w - 1, t_all)
        width = {"max": 1, "last": 1, "both": 2}[how] * encoder.out_channels
        feats = torch.zeros(t_all, width)
        bs = int(self.eval_params["batch_size"]) * 4
        for i in range(0, len(ends), bs):
            xb = lag_windows(self.series, w, ends[i: i + bs]).to(self.device)
            if how == "max":
                f = encoder.pool(xb)
            else:
                z, c, _ = encoder.encode(xb)
                h = {"context": c, "latents": z, "both": torch.cat([z, c], -1)}[encoder.pool_over]
                f = h[:, -1] if how == "last" else torch.cat([h.amax(1), h[:, -1]], -1)
            feats[ends[i: i + bs]] = f.float().cpu()
        return feats

    @torch.no_grad()
    def diagnostic_pair(self, encoder: nn.Module) -> tuple[Tensor, Tensor]:
        """Pooled representations of two fixed random views of (up to) 256 training sequences, for the
        per-epoch alignment / uniformity / rank diagnostics."""
        encoder.eval()
        g = torch.Generator().manual_seed(0)
        x, mask = _trim(self.train_x[:256], self.train_mask[:256])
        view = SequenceView(**_params(self.cfg, "augment.params"))
        return encoder.pool(*view(x, mask, g)).float().cpu(), encoder.pool(*view(x, mask, g)).float().cpu()

    def embed(self, encoder: nn.Module) -> Tensor:
        if self.kind == "ett":
            return self._ett_features(encoder)[int(self.eval_params["window"]) - 1:]
        return torch.cat([self.represent(encoder, s.x, s.mask) for s in (self.train, self.test)])

    def evaluate(self, encoder: nn.Module, seed: int) -> dict:
        p = self.eval_params
        if self.kind == "ett":
            return ett_result(ett_ridge(self._ett_features(encoder), self.target, ETT_SPLITS,
                                        horizons=p["horizons"], first=int(p["window"]) - 1))
        z_tr = self.represent(encoder, self.train.x, self.train.mask)
        z_te = self.represent(encoder, self.test.x, self.test.mask)
        if self.kind == "fsdd":
            r = fsdd_probes(z_tr, self.train.y, self.train.extra["speaker"], z_te, self.test.y,
                            self.test.extra["speaker"], shots=p["shots"], draws=p["draws"], seed=seed)
            return {"protocol": "fsdd_linear", "metric": "accuracy", **r}
        r = ts_svm(z_tr, self.train.y, z_te, self.test.y)
        r["C"] = str(r["C"]) if r["C"] == float("inf") else r["C"]  # JSON has no infinity
        return {"protocol": "ts_svm", "metric": "accuracy", **r}
