"""Probes and splits: accuracy on easy/impossible data, selection on val only, train-only standardisation."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graphcl.evaluate import evaluate_nodes, knn_probe, linear_probe, node_splits, probes, svm_cv


def blobs(n: int = 600, classes: int = 3, dim: int = 16, spread: float = 8.0, seed: int = 0):
    """Well separated Gaussian blobs: x [n, dim] float32, y [n]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(classes, dim))[y] * spread + rng.normal(size=(n, dim))
    return x.astype(np.float32), y


def thirds(n: int):
    idx = np.arange(n)
    return idx[: n // 3], idx[n // 3: 2 * n // 3], idx[2 * n // 3:]


def test_linear_probe_separable_blobs_near_perfect():
    x, y = blobs()
    out = linear_probe(torch.from_numpy(x), torch.from_numpy(y), *thirds(len(y)))
    assert set(out) == {"val", "test", "C"}
    assert out["test"] > 0.98 and out["val"] > 0.98


def test_linear_probe_random_labels_at_chance():
    x, _ = blobs(n=1500)
    y = np.random.default_rng(1).integers(0, 5, len(x))
    out = linear_probe(x, y, *thirds(len(y)))
    assert out["test"] < 0.3  # chance is 0.2


def test_linear_probe_ties_on_val_keep_smallest_c():
    x, y = blobs()
    out = linear_probe(x, y, *thirds(len(y)), c_grid=(10.0, 0.1, 1.0))
    assert out["val"] == 1.0 and out["C"] == 0.1


def test_linear_probe_selects_c_on_val_not_test():
    # 1-D feature, train has 3x more class 1 (at +1) than class 0 (at -1). Tiny C shrinks the weight to ~0,
    # so the model predicts the train majority (1) everywhere; large C follows the feature.
    # Val: class-1 rows at -1 -> only tiny C is right. Test: class-0 rows at -1 -> only large C is right.
    rng = np.random.default_rng(0)
    x_train = np.r_[np.full(30, 1.0), np.full(10, -1.0)] + 0.1 * rng.normal(size=40)
    y_train = np.r_[np.ones(30), np.zeros(10)]
    x_eval = -1.0 + 0.1 * rng.normal(size=40)
    x = np.r_[x_train, x_eval][:, None]
    y = np.r_[y_train, np.ones(20), np.zeros(20)].astype(int)
    out = linear_probe(x, y, np.arange(40), np.arange(40, 60), np.arange(60, 80), c_grid=(1e-4, 1e2))
    assert out == {"val": 1.0, "test": 0.0, "C": 1e-4}


def test_linear_probe_standardises_with_train_statistics():
    # Test rows are class-0 points shifted onto where class 1 lives in train. Under the train transform they
    # stay there and are all misclassified; standardising the test rows by their own statistics would centre
    # them and yield ~50 %.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = np.c_[2.0 * y - 1, rng.normal(size=400)] + 0.2 * rng.normal(size=(400, 2))
    test = np.arange(200, 400)
    y[test] = 0
    x[test, 0] = 1.0 + 0.2 * rng.normal(size=200)
    out = linear_probe(x, y, np.arange(100), np.arange(100, 200), test)
    assert out["val"] == 1.0 and out["test"] == 0.0


def test_linear_probe_scaler_is_fit_on_train_rows_only(monkeypatch):
    # Catches fitting on all rows too (a transform shared by every split, invisible to accuracy).
    fitted = []

    class Spy(probes.StandardScaler):
        def fit(self, x, *args, **kwargs):
            fitted.append(np.array(x))
            return super().fit(x, *args, **kwargs)

    monkeypatch.setattr(probes, "StandardScaler", Spy)
    x, y = blobs()
    x[400:] += 100.0  # test rows far off, so any test row in the fit would move the statistics
    train, val, test = thirds(len(y))
    linear_probe(x, y, train, val, test, c_grid=(1.0,))
    assert len(fitted) == 1 and np.array_equal(fitted[0], x[train])


def test_linear_probe_deterministic():
    x, _ = blobs(n=300)
    y = np.random.default_rng(2).integers(0, 3, len(x))
    grid = (0.01, 1.0, 100.0)
    assert linear_probe(x, y, *thirds(len(y)), c_grid=grid) == linear_probe(x, y, *thirds(len(y)), c_grid=grid)


def test_linear_probe_accepts_masks_and_ogb_shaped_labels():
    x, y = blobs()
    train, val, test = (torch.zeros(len(y), dtype=torch.bool).index_fill_(0, torch.from_numpy(i), True)
                        for i in thirds(len(y)))
    assert linear_probe(x, y[:, None], train, val, test) == linear_probe(x, y, *thirds(len(y)))


@pytest.mark.parametrize("change, message", [
    (dict(labels=None), "labels are required"),
    (dict(labels=np.zeros(599, dtype=int)), r"\[600, 16\] and labels \[599\]"),
    (dict(val_idx=np.array([], dtype=int)), "val split is empty"),
    (dict(test_idx=np.array([598, 600])), "test split must hold integer indices"),
    (dict(test_idx=np.array([-1])), "test split must hold integer indices"),
    (dict(train_idx=np.array([0, 1]), labels=np.zeros(600, dtype=int)), "single class"),
    (dict(val_idx=np.arange(400, 450)), "val and test splits overlap"),
])
def test_linear_probe_rejects_bad_input(change, message):
    x, y = blobs()
    train, val, test = thirds(len(y))
    kwargs = dict(embeddings=x, labels=y, train_idx=train, val_idx=val, test_idx=test) | change
    with pytest.raises(ValueError, match=message):
        linear_probe(**kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_linear_probe_rejects_non_finite_embeddings(bad):
    x, y = blobs()
    x[5, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        linear_probe(x, y, *thirds(len(y)))


def masked_data(n: int = 50) -> Data:
    masks = torch.zeros(3, n, dtype=torch.bool)
    masks[0, :10], masks[1, 10:25], masks[2, 25:] = True, True, True
    return Data(num_nodes=n, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])


def test_node_splits_public_from_masks():
    (train, val, test), = node_splits(masked_data(), "public", repeats=5)
    assert train.tolist() == list(range(10)) and val.tolist() == list(range(10, 25))
    assert test.tolist() == list(range(25, 50))


def test_node_splits_public_names_missing_mask():
    data = masked_data()
    del data.val_mask
    with pytest.raises(ValueError, match="val_mask"):
        node_splits(data, "public")


def test_node_splits_random_sizes_disjoint_deterministic():
    data = Data(num_nodes=1000)
    splits = node_splits(data, "random", repeats=3, seed=7)
    assert len(splits) == 3
    for train, val, test in splits:
        assert (len(train), len(val), len(test)) == (100, 100, 800)
        assert torch.cat([train, val, test]).sort().values.equal(torch.arange(1000))  # disjoint and complete
    again = node_splits(data, "random", repeats=3, seed=7)
    assert all(a.equal(b) for s, t in zip(splits, again) for a, b in zip(s, t))
    assert not splits[0][0].equal(splits[1][0])


def test_node_splits_ogb_from_dict():
    split_idx = {"train": torch.tensor([0, 1]), "valid": torch.tensor([2]), "test": torch.tensor([3, 4])}
    (train, val, test), = node_splits(Data(num_nodes=5), "ogb", split_idx=split_idx)
    assert train.tolist() == [0, 1] and val.tolist() == [2] and test.tolist() == [3, 4]
    with pytest.raises(ValueError, match="split_idx"):
        node_splits(Data(num_nodes=5), "ogb")
    with pytest.raises(ValueError, match="unknown protocol"):
        node_splits(Data(num_nodes=5), "planetoid")


def test_evaluate_nodes_output():
    x, y = blobs(n=500)
    data = masked_data(500)
    data.y = torch.from_numpy(y)
    out = evaluate_nodes(x, data, "random", repeats=3, c_grid=(0.1, 1.0))
    assert set(out) == {"protocol", "metric", "num_splits", "val", "test", "test_std", "per_split"}
    assert (out["protocol"], out["metric"], out["num_splits"], len(out["per_split"])) == ("random", "accuracy", 3, 3)
    assert out["test"] > 0.98 and out["test_std"] >= 0.0
    assert evaluate_nodes(x, data, "public", c_grid=(1.0,))["num_splits"] == 1


def test_evaluate_nodes_with_ogb_evaluator():
    from ogb.nodeproppred import Evaluator

    x, y = blobs(n=300)
    split_idx = dict(zip(("train", "valid", "test"), map(torch.from_numpy, thirds(300))))
    data = Data(num_nodes=300, y=torch.from_numpy(y)[:, None])
    out = evaluate_nodes(x, data, "ogb", split_idx=split_idx, evaluator=Evaluator("ogbn-arxiv"), c_grid=(1.0,))
    assert out["metric"] == "acc"
    assert out["test"] == linear_probe(x, y, *thirds(300), c_grid=(1.0,))["test"]


def test_knn_probe_blobs_and_chunking():
    x, y = blobs(n=800, classes=4)
    acc = knn_probe(x[:600], y[:600], x[600:], y[600:], k=20)
    assert acc > 0.98
    assert knn_probe(x[:600], y[:600], x[600:], y[600:], k=20, chunk_size=7) == acc
    assert knn_probe(x[:600], y[:600], x[600:], y[600:], k=5000, temperature=0.001) > 0.98  # k > M, no overflow
    shuffled = np.random.default_rng(0).permutation(y[:600])
    assert knn_probe(x[:600], shuffled, x[600:], y[600:], k=20) < 0.45  # chance is 0.25


def test_knn_probe_rejects_mismatched_lengths():
    x, y = blobs(n=100)
    with pytest.raises(ValueError, match="differ in length"):
        knn_probe(x[:60], y[:59], x[60:], y[60:])


def test_svm_cv_blobs():
    x, y = blobs(n=188, classes=2, dim=64, spread=1.0)
    out = svm_cv(x, y)
    assert len(out["per_fold"]) == 10 and len(out["C"]) == 10
    assert out["mean"] > 0.95 and out["std"] >= 0.0
    assert svm_cv(x, y) == out  # deterministic
    assert svm_cv(x, y, n_jobs=2) == out  # processes over the folds change nothing


def test_svm_cv_random_labels_at_chance():
    x, _ = blobs(n=188, classes=2, dim=64)
    y = np.random.default_rng(3).integers(0, 2, 188)
    assert svm_cv(x, y, folds=5)["mean"] < 0.65


def test_svm_cv_linear_solves_the_dual(monkeypatch):
    """The papers' LinearSVC solved the dual; scikit-learn's "auto" would switch to the primal here (N > D)."""
    solvers = []

    class Recording(probes.LinearSVC):
        def fit(self, x, y, sample_weight=None):
            solvers.append(self.dual)
            return super().fit(x, y, sample_weight)

    monkeypatch.setattr(probes, "LinearSVC", Recording)
    x, y = blobs(n=200, classes=2, dim=8)
    svm_cv(x, y, folds=5, c_grid=[0.1, 10.0])
    assert solvers and all(dual is True for dual in solvers)
