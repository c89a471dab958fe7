"""Sequence protocols: the TS2Vec SVM rule for C, FSDD probes / few-shot, ETT ridge forecasting."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphcl.evaluate.sequence import TS_C_GRID, ett_ridge, few_shot, fsdd_probes, lag_windows, ts_svm


def _blobs(n_per_class, seed=0, d=4, sep=3.0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(k * sep, 1.0, (n, d)) for k, n in enumerate(n_per_class)])
    y = np.concatenate([np.full(n, k) for k, n in enumerate(n_per_class)])
    return x, y


@pytest.mark.parametrize("counts, infinite", [
    ((20, 20), True),        # fewer than 50 training samples
    ((46, 4), True),         # 50 samples, but a class has fewer than 5
    ((25, 25), False),       # 5-fold grid search
    ((30, 30, 5), False),
])
def test_ts_svm_uses_c_infinity_for_small_training_sets(counts, infinite):
    x, y = _blobs(counts)
    xt, yt = _blobs(counts, seed=1)
    r = ts_svm(x, y, xt, yt)
    assert (r["C"] == math.inf) is infinite and r["cv"] is not infinite
    if not infinite:
        assert r["C"] in TS_C_GRID
    assert 0.9 <= r["test"] <= 1.0 and 0.0 <= r["val"] <= 1.0


def test_ts_svm_rejects_bad_input():
    x, y = _blobs((30, 30))
    with pytest.raises(ValueError, match="train_x has 60 rows but train_y has 59"):
        ts_svm(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="single class"):
        ts_svm(x, np.zeros(60), x, y)


def test_fsdd_probes_and_few_shot():
    x, digit = _blobs((15,) * 10, d=12, sep=2.0)
    speaker = np.arange(len(x)) % 3
    x = np.concatenate([x, np.eye(3)[speaker] * 5], 1)
    xt, dt = _blobs((5,) * 10, seed=1, d=12, sep=2.0)
    st = np.arange(len(xt)) % 3
    xt = np.concatenate([xt, np.eye(3)[st] * 5], 1)
    r = fsdd_probes(x, digit, speaker, xt, dt, st, c_grid=(1.0, 10.0), draws=2)
    assert r["test"] > 0.8 and r["speaker_test"] > 0.9 and r["few_shot"] > 0.6
    fs = few_shot(x, digit, xt, dt, shots=10, draws=3)
    assert len(fs["per_draw"]) == 3 and fs["mean"] == pytest.approx(np.mean(fs["per_draw"]))


def test_ett_ridge_beats_nothing_on_a_predictable_series():
    t = np.arange(3000)
    y = np.sin(2 * np.pi * t / 24) + 0.05 * np.random.default_rng(0).normal(size=len(t))
    series = torch.tensor(y, dtype=torch.float32)[None]
    w = 48
    feats = torch.zeros(len(t), w)
    ends = torch.arange(w - 1, len(t))
    feats[ends] = lag_windows(series, w, ends)[:, 0]
    splits = {"train": (0, 1800), "val": (1800, 2400), "test": (2400, 3000)}
    r = ett_ridge(feats, y, splits, horizons=(6, 24), first=w - 1)
    assert set(r["mse"]) == {6, 24} and r["mse"][24] < 0.05 and r["mae"][6] < 0.2
    assert r["test"] == pytest.approx(np.mean(list(r["mse"].values())))
    with pytest.raises(ValueError, match="no row for horizon"):
        ett_ridge(feats, y, splits, horizons=(700,), first=w - 1)


def test_lag_windows():
    s = torch.arange(10.0)[None]
    out = lag_windows(s, 3, torch.tensor([2, 9]))
    assert out.tolist() == [[[0, 1, 2]], [[7, 8, 9]]]
    with pytest.raises(ValueError, match="ends must lie"):
        lag_windows(s, 3, torch.tensor([1]))
