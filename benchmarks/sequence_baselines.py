"""Baselines printed beside CPC in the sequence tables, on the same protocols (never part of the test run).

For each config given (configs/cpc/<dataset>.yaml):
  * random:     the same encoder, randomly initialised (one per seed), frozen, same protocol;
  * supervised: the same encoder + a linear head trained with cross-entropy on the training labels (the same
                views, optimiser and number of epochs as CPC), then frozen and evaluated by the same protocol;
                on ETT the head instead forecasts the next 24 values (MSE) from the window's representation;
  * FSDD only:  MFCC features (librosa, optional: `pip install librosa`) + the same logistic-regression probes;
  * ETT only:   ridge on the raw lag window (window length chosen on the validation segment).

    GRAPHCL_DATA=../shared/datasets python benchmarks/sequence_baselines.py configs/cpc/ecg200.yaml [...] \
        [--seeds 0 1] [--save runs/sequences]

Figures are in results.json's units (accuracy in percent, MSE as is). `--save runs/sequences` (the sequence suite's
run root) merges each dataset's baselines into runs/sequences/baselines.json as soon as that dataset is done,
keeping the other datasets; `graphcl reproduce configs/suites/sequences.yaml` prints them in the results table's
"baselines (same protocol)" column (test figure, plus the suite's `show` figures: speaker and few-shot accuracy,
MSE per horizon).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from graphcl.data.sequences import ETT_SPLITS
from graphcl.evaluate.sequence import ETT_HORIZONS, ett_result, ett_ridge, fsdd_probes, lag_windows
from graphcl.sequence import SequenceView, build_sequence_encoder
from graphcl.train.reproduce import baseline_figures, save_baselines
from graphcl.train.tasks.sequence import SequenceTask, _params


def random_encoder(task: SequenceTask, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_sequence_encoder(**task.encoder_spec()[1]).to(task.device).eval()


def supervised_encoder(task: SequenceTask, cfg, seed: int) -> nn.Module:
    """The encoder trained end to end with a linear head on its pooled representation."""
    torch.manual_seed(seed)
    enc = build_sequence_encoder(**task.encoder_spec()[1]).to(task.device)
    view = SequenceView(**_params(cfg, "augment.params"))
    ett = task.kind == "ett"
    out = 24 if ett else int(task.train.y.max()) + 1
    head = nn.Linear(enc.out_channels, out).to(task.device)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=cfg.optim.lr)
    if ett:  # windows of the train segment whose next 24 values are also in it
        w = int(task.eval_params["window"])
        ends = torch.arange(w - 1, ETT_SPLITS["train"][1] - 24)
        xs = lag_windows(task.series, w, ends)
        ys = task.target[ends[:, None] + 1 + torch.arange(24)[None, :]]
        masks = torch.ones(len(xs), w, dtype=torch.bool)
    else:
        xs, masks, ys = task.train.x, task.train.mask, task.train.y
    bs = int(cfg.data.batch_size)
    steps = int(cfg.trainer.epochs) * max(1, len(task.train.x) // bs)  # as many steps as CPC takes
    g = torch.Generator().manual_seed(seed)
    enc.train()
    for _ in range(steps):
        idx = torch.randint(len(xs), (bs,), generator=g)
        x, m = view(xs[idx].to(task.device), masks[idx].to(task.device))
        if ett:  # the forecast must start right after the window: no crop of its end
            x, m = xs[idx].to(task.device), masks[idx].to(task.device)
        pred = head(enc.pool(x, m))
        y = ys[idx].to(task.device)
        loss = F.mse_loss(pred, y) if ett else F.cross_entropy(pred, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return enc.eval()


def mfcc_features(task: SequenceTask, n_mfcc: int = 20) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and std over frames of 20 MFCCs (+ deltas) per clip, from the raw 8 kHz audio; None without librosa."""
    try:
        import librosa
    except ImportError:
        return None
    feats = []
    for s in (task.train, task.test):
        rows = []
        for x, n in zip(s.x[:, 0].numpy(), s.lengths.tolist()):
            m = librosa.feature.mfcc(y=x[:n].astype(np.float32), sr=8000, n_mfcc=n_mfcc, n_fft=512, hop_length=128)
            d = librosa.feature.delta(m, width=9)  # every clip (>= 1148 samples) has >= 9 frames
            rows.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
        feats.append(np.stack(rows))
    return feats[0], feats[1]


def raw_window_ridge(task: SequenceTask) -> dict:
    """Ridge on the last W raw (standardised) values of the target, W in {24, 48, 96, 168, 336} chosen on val;
    the figures of `task.evaluate` on ETT (test, val, mse_H, mae_H) and the window."""
    best = None
    for w in (24, 48, 96, 168, 336):
        feats = torch.zeros(task.series.shape[1], w)
        ends = torch.arange(w - 1, task.series.shape[1])
        feats[ends] = lag_windows(task.target[None], w, ends)[:, 0]
        r = ett_ridge(feats, task.target, ETT_SPLITS, horizons=task.eval_params["horizons"], first=335)
        if best is None or r["val"] < best[1]["val"]:
            best = (w, r)
    w, r = best
    return {**ett_result(r), "window": w}


def fmt(figures: dict, kind: str) -> str:
    """A `baseline_figures` entry as the printed table shows it."""
    if kind == "ett":
        return " / ".join(f"{figures[f'mse_{h}']:.3f}" for h in ETT_HORIZONS)
    extra = (f", speaker {figures['speaker_test']:.1f}, few-shot {figures['few_shot']:.1f}"
             if "speaker_test" in figures else "")
    return f"{figures['test']:.1f}{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--skip-supervised", action="store_true")
    ap.add_argument("--save", metavar="SUITE_ROOT", default=None,
                    help="merge the figures into SUITE_ROOT/baselines.json (e.g. runs/sequences), the suite's "
                    "run root, for `graphcl reproduce`")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| dataset | baseline | seeds | test (accuracy %, or MSE per horizon 24/48/168/336/720) | seconds |")
    print("|---|---|---|---|---|")
    for path in args.configs:
        cfg = OmegaConf.load(path)
        cfg = OmegaConf.merge({"data": {"root": None}, "model": {"encoder": {"out_channels": None, "options": {}}}}, cfg)
        task = SequenceTask(cfg, torch.device("cpu"))
        saved = {}

        def row(label: str, figures: dict, seeds: str, start: float, note: str = "") -> None:
            saved[label] = figures
            print(f"| {task.name} | {label}{note} | {seeds} | {fmt(figures, task.kind)} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)

        kinds = [("random init", lambda s: random_encoder(task, s))]
        if not args.skip_supervised:
            kinds.append(("supervised", lambda s: supervised_encoder(task, cfg, s)))
        for label, make in kinds:
            start = time.perf_counter()
            figures = baseline_figures([task.evaluate(make(s), s) for s in args.seeds])
            row(label, figures, str(len(args.seeds)), start)
        if task.kind == "fsdd":
            start = time.perf_counter()
            feats = mfcc_features(task)
            if feats is None:
                print(f"| {task.name} | MFCC + logistic regression | - | librosa not installed | - |")
            else:
                r = fsdd_probes(feats[0], task.train.y, task.train.extra["speaker"], feats[1], task.test.y,
                                task.test.extra["speaker"])
                row("MFCC + logistic regression", baseline_figures([{"metric": "accuracy", **r}]), "-", start)
        if task.kind == "ett":
            start = time.perf_counter()
            r = raw_window_ridge(task)  # W, chosen on val, is saved as the figure "window"
            row("ridge on raw window", baseline_figures([r]), "-", start, f" (W = {r['window']})")
        if args.save and saved:
            print(f"merged into {save_baselines(args.save, task.name, saved)} ({task.name})", flush=True)


if __name__ == "__main__":
    main()
