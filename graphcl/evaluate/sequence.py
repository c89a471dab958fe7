"""Frozen-representation protocols for sequences: the TS2Vec SVM protocol for UCR/UEA (`ts_svm`), the FSDD
linear probes and few-shot protocol (`fsdd_probes`), and ridge forecasting on ETT (`ett_ridge`).

None of them chooses anything on the test split: C by cross-validation on the training set, ridge alpha on
the validation segment. Accuracies are fractions in [0, 1]; forecasting errors are on the standardised scale.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import Tensor

__all__ = ["ts_svm", "fsdd_probes", "few_shot", "ett_ridge", "lag_windows", "TS_C_GRID", "RIDGE_ALPHAS",
           "ETT_HORIZONS"]

TS_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, math.inf)
RIDGE_ALPHAS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
ETT_HORIZONS = (24, 48, 168, 336, 720)
PROBE_C_GRID = (1e-2, 1e-1, 1.0, 1e1)


def _np(name: str, x, ndim: int) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf (shape {a.shape})")
    return a


def _rows(fn: str, x, y, part: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _np(f"{fn}: {part}_x", x, 2), _np(f"{fn}: {part}_y", y, 1)
    if len(x) != len(y):
        raise ValueError(f"{fn}: {part}_x has {len(x)} rows but {part}_y has {len(y)}")
    return x, y


def ts_svm(train_x, train_y, test_x, test_y, c_grid: Sequence[float] = TS_C_GRID, folds: int = 5) -> dict:
    """TS2Vec's protocol: RBF SVM (gamma="scale") on frozen representations `[N, F]`.

    C is chosen by `folds`-fold stratified CV on the training set over `c_grid` (ties keep the smaller C),
    except that C = inf (hard margin) is used directly when the training set has fewer than 50 samples or a
    class has fewer than 5 (too few for a 5-fold search). Returns {"test", "val", "C", "cv"}: test accuracy,
    val = the CV accuracy of the chosen C (the training accuracy when the search was skipped, `cv` False).
    """
    fn = "ts_svm"
    x, y = _rows(fn, train_x, train_y, "train")
    xt, yt = _rows(fn, test_x, test_y, "test")
    if x.shape[1] != xt.shape[1]:
        raise ValueError(f"{fn}: train_x has {x.shape[1]} features but test_x has {xt.shape[1]}")
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2:
        raise ValueError(f"{fn}: the training set holds a single class")
    if len(y) < 50 or counts.min() < 5:
        model = SVC(C=math.inf, gamma="scale").fit(x, y)
        return {"test": float(model.score(xt, yt)), "val": float(model.score(x, y)), "C": math.inf, "cv": False}
    search = GridSearchCV(SVC(gamma="scale"), {"C": sorted(c_grid)}, cv=StratifiedKFold(folds), refit=True)
    search.fit(x, y)
    return {"test": float(search.score(xt, yt)), "val": float(search.best_score_),
            "C": float(search.best_params_["C"]), "cv": True}


def _logreg(c: float, seed: int, max_iter: int = 1000):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))


def _probe(x, y, xt, yt, c_grid, val_fraction, seed) -> dict:
    """Standardised logistic regression; C chosen on a stratified `val_fraction` hold-out of train (ties keep
    the smaller C), then refit on all of train. {"test", "val", "C"}."""
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(np.arange(len(y)), test_size=val_fraction, stratify=y, random_state=seed)
    best = (-1.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in sorted(c_grid):
            score = float(_logreg(c, seed).fit(x[tr], y[tr]).score(x[va], y[va]))
            if score > best[0]:
                best = (score, c)
        model = _logreg(best[1], seed).fit(x, y)
    return {"test": float(model.score(xt, yt)), "val": best[0], "C": float(best[1])}


def few_shot(train_x, train_y, test_x, test_y, shots: int = 10, draws: int = 5, seed: int = 0, c: float = 1.0) -> dict:
    """Logistic regression on `shots` training rows per class (drawn without replacement), test accuracy;
    mean and std over `draws` draws -> {"mean", "std", "per_draw"}."""
    x, y = _rows("few_shot", train_x, train_y, "train")
    xt, yt = _rows("few_shot", test_x, test_y, "test")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(draws):
        idx = np.concatenate([rng.choice(np.flatnonzero(y == k), shots, replace=False) for k in np.unique(y)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores.append(float(_logreg(c, seed).fit(x[idx], y[idx]).score(xt, yt)))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "per_draw": scores}


def fsdd_probes(train_x, train_digit, train_speaker, test_x, test_digit, test_speaker,
                c_grid: Sequence[float] = PROBE_C_GRID, val_fraction: float = 0.2, shots: int = 10, draws: int = 5,
                seed: int = 0) -> dict:
    """FSDD on the official split: a linear probe for the digit and one for the speaker (C chosen on a
    stratified hold-out of the training clips, then refit on all of them),
    and the few-shot digit protocol. {"test": digit accuracy, "val": its CV accuracy, "speaker_test",
    "speaker_val", "few_shot", "few_shot_std", "C", "speaker_C"}; val = hold-out accuracy."""
    x, d = _rows("fsdd_probes", train_x, train_digit, "train")
    xt, dt = _rows("fsdd_probes", test_x, test_digit, "test")
    s, st = _np("fsdd_probes: train_speaker", train_speaker, 1), _np("fsdd_probes: test_speaker", test_speaker, 1)
    digit = _probe(x, d, xt, dt, c_grid, val_fraction, seed)
    speaker = _probe(x, s, xt, st, c_grid, val_fraction, seed)
    fs = few_shot(x, d, xt, dt, shots, draws, seed)
    return {"test": digit["test"], "val": digit["val"], "C": digit["C"], "speaker_test": speaker["test"],
            "speaker_val": speaker["val"], "speaker_C": speaker["C"], "few_shot": fs["mean"], "few_shot_std": fs["std"]}


def lag_windows(series: Tensor, window: int, ends: Tensor) -> Tensor:
    """The windows `series[:, e - window + 1 : e + 1]` for every end index e in `ends` -> `[len(ends), C, window]`.

    series `[C, T]`; every end must satisfy window - 1 <= e < T.
    """
    if ends.numel() and (int(ends.min()) < window - 1 or int(ends.max()) >= series.shape[1]):
        raise ValueError(f"lag_windows: ends must lie in [{window - 1}, {series.shape[1]}), "
                         f"got [{int(ends.min())}, {int(ends.max())}]")
    idx = ends[:, None] - window + 1 + torch.arange(window, device=series.device)[None, :]
    return series[:, idx].transpose(0, 1)


def ett_ridge(features, target, splits: dict[str, tuple[int, int]], horizons: Sequence[int] = ETT_HORIZONS,
              alphas: Sequence[float] = RIDGE_ALPHAS, first: int = 0) -> dict:
    """Ridge forecasting: from `features[t]` (a representation of the series up to time t, `[T, F]`) predict
    `target[t + 1 .. t + H]` (`target [T]`, standardised) for each horizon H.

    A row t belongs to segment [a, b) of `splits` ("train", "val", "test") when a <= t and t + H < b, and
    t >= `first` (the first t whose features are defined). Alpha is chosen per horizon by val MSE.
    Returns {"test": mean test MSE over horizons, "val": mean val MSE, "mse": {H: ...}, "mae": {H: ...},
    "alpha": {H: ...}}.
    """
    f = _np("ett_ridge: features", features, 2)
    y = _np("ett_ridge: target", target, 1)
    if len(f) != len(y):
        raise ValueError(f"ett_ridge: features has {len(f)} rows but target has {len(y)}")
    out = {"mse": {}, "mae": {}, "alpha": {}, "val_mse": {}}
    for h in horizons:
        parts = {}
        for name in ("train", "val", "test"):
            a, b = splits[name]
            t = np.arange(max(a, first), b - h)
            if len(t) == 0:
                raise ValueError(f"ett_ridge: segment {name} {splits[name]} has no row for horizon {h}")
            parts[name] = (f[t], y[t[:, None] + 1 + np.arange(h)[None, :]])
        best = None
        for alpha in alphas:
            model = Ridge(alpha=alpha).fit(*parts["train"])
            mse = float(((model.predict(parts["val"][0]) - parts["val"][1]) ** 2).mean())
            if best is None or mse < best[0]:
                best = (mse, alpha, model)
        err = best[2].predict(parts["test"][0]) - parts["test"][1]
        out["mse"][h], out["mae"][h] = float((err**2).mean()), float(np.abs(err).mean())
        out["alpha"][h], out["val_mse"][h] = best[1], best[0]
    out["test"] = float(np.mean(list(out["mse"].values())))
    out["val"] = float(np.mean(list(out["val_mse"].values())))
    return out


def ett_result(r: dict) -> dict:
    """`ett_ridge`'s output as a run's flat result: test / val (mean MSE over horizons) and `mse_H` / `mae_H`."""
    return {"protocol": "ett_ridge", "metric": "mse", "test": r["test"], "val": r["val"],
            **{f"{k}_{h}": v for k in ("mse", "mae") for h, v in r[k].items()}}

