"""Probes on frozen embeddings: logistic regression (C chosen on val), weighted kNN, SVM with nested CV.

None of them ever looks at the test split to choose anything.
"""
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from torch import Tensor

from graphcl.evaluate.splits import node_splits

ArrayLike = Tensor | np.ndarray
Metric = Callable[[np.ndarray, np.ndarray], float]
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


def linear_probe(
    embeddings: ArrayLike,
    labels: ArrayLike | None,
    train_idx: ArrayLike,
    val_idx: ArrayLike,
    test_idx: ArrayLike,
    c_grid: Sequence[float] = C_GRID,
    max_iter: int = 1000,
    standardize: bool = True,
    seed: int = 0,
    metric: str | Metric = "accuracy",
) -> dict[str, float]:
    """Fit multinomial logistic regression on train rows of ``embeddings [N, D]`` for each C, pick C on val.

    ``labels``: ``[N]`` (or ``[N, 1]``, OGB) integer classes. Splits: index arrays or ``[N]`` boolean masks.
    ``metric``: ``"accuracy"`` or ``f(y_true, y_pred) -> float``. Ties on val keep the smaller C.
    Returns ``{"val", "test", "C"}``: best val score, test score of that same model, its C.
    """
    x = _matrix("linear_probe", embeddings)
    y = _labels("linear_probe", labels, x)
    train, val, test = _splits("linear_probe", len(y), train=train_idx, val=val_idx, test=test_idx)
    if np.unique(y[train]).size < 2:
        raise ValueError("linear_probe: the train split holds a single class; a classifier needs two or more")
    if not c_grid:
        raise ValueError("linear_probe: c_grid is empty")
    score = _metric(metric)
    x_train, x_val, x_test = x[train], x[val], x[test]
    if standardize:  # statistics of the train rows only, so val/test never shape the features
        scaler = StandardScaler().fit(x_train)
        x_train, x_val, x_test = scaler.transform(x_train), scaler.transform(x_val), scaler.transform(x_test)
    best, best_val, best_c = None, -np.inf, None
    for c in sorted(c_grid):
        with warnings.catch_warnings():
            # Large C on separable train rows never converges exactly; the unfinished fit is still a fair
            # candidate, judged on val like every other one.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x_train, y[train])
        val_score = score(y[val], model.predict(x_val))
        if val_score > best_val:  # strict, so ties keep the smaller (more regularised) C
            best, best_val, best_c = model, val_score, c
    return {"val": float(best_val), "test": float(score(y[test], best.predict(x_test))), "C": float(best_c)}


def evaluate_nodes(
    embeddings: ArrayLike,
    data: Any,
    protocol: str = "public",
    repeats: int = 1,
    seed: int = 0,
    split_idx: dict[str, Tensor] | None = None,
    evaluator: Any = None,
    train_ratio: float = 0.1,
    val_ratio: float = 0.1,
    **probe_kwargs: Any,
) -> dict[str, Any]:
    """Linear-probe ``embeddings [N, D]`` against ``data.y`` on every split of ``protocol`` (see ``node_splits``).

    ``evaluator``: an ``ogb`` ``Evaluator`` or ``f(y_true, y_pred) -> float``; sklearn accuracy when None.
    Returns ``{"protocol", "metric", "num_splits", "val", "test", "test_std", "per_split"}``; means over splits,
    population std (0 for a single split).
    """
    splits = node_splits(data, protocol, repeats, seed, train_ratio, val_ratio, split_idx)
    x = _matrix("evaluate_nodes", embeddings)  # convert once, not once per split
    name, metric = ("accuracy", "accuracy") if evaluator is None else _evaluator_metric(evaluator)
    per_split = [
        linear_probe(x, getattr(data, "y", None), *split, seed=seed, metric=metric, **probe_kwargs)
        for split in splits
    ]
    test = [r["test"] for r in per_split]
    return {
        "protocol": protocol,
        "metric": name,
        "num_splits": len(per_split),
        "val": float(np.mean([r["val"] for r in per_split])),
        "test": float(np.mean(test)),
        "test_std": float(np.std(test)),
        "per_split": per_split,
    }


@torch.no_grad()
def knn_probe(
    train_emb: ArrayLike,
    train_y: ArrayLike,
    test_emb: ArrayLike,
    test_y: ArrayLike,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> float:
    """Accuracy of weighted kNN: cosine top-``k`` train neighbours vote with ``exp(sim / temperature)``.

    ``train_emb [M, D]``, ``train_y [M]``, ``test_emb [Q, D]``, ``test_y [Q]``. Test rows are processed
    ``chunk_size`` at a time so memory stays ``O(chunk_size * M)``.
    """
    train, test = torch.as_tensor(train_emb).float(), torch.as_tensor(test_emb).float()
    train_y = torch.as_tensor(train_y, device=train.device).long().view(-1)
    test_y = torch.as_tensor(test_y, device=train.device).long().view(-1)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"knn_probe: need [M, D] and [Q, D] embeddings, got {list(train.shape)}, {list(test.shape)}")
    if len(train) != len(train_y) or len(test) != len(test_y):
        raise ValueError(
            f"knn_probe: embeddings and labels differ in length: train {list(train.shape)} vs "
            f"{list(train_y.shape)}, test {list(test.shape)} vs {list(test_y.shape)}"
        )
    if len(train) == 0 or len(test) == 0:
        raise ValueError("knn_probe: train and test sets must be non-empty")
    if not (torch.isfinite(train).all() and torch.isfinite(test).all()):
        raise ValueError("knn_probe: embeddings contain NaN or Inf")
    if k < 1 or temperature <= 0:
        raise ValueError(f"knn_probe: need k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    train, test = F.normalize(train, dim=1), F.normalize(test.to(train.device), dim=1)
    num_classes = num_classes or int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk_size):
        sim, idx = (test[start:start + chunk_size] @ train.T).topk(k, dim=1)  # [B, k]
        # Shifting by the largest possible cosine (1) keeps exp finite at small temperatures; argmax unchanged.
        weight = ((sim - 1) / temperature).exp()
        votes = torch.zeros(len(sim), num_classes, device=sim.device).scatter_add_(1, train_y[idx], weight)
        correct += (votes.argmax(dim=1) == test_y[start:start + chunk_size]).sum().item()
    return correct / len(test)


def svm_cv(
    embeddings: ArrayLike,
    labels: ArrayLike | None,
    folds: int = 10,
    c_grid: Sequence[float] = C_GRID,
    inner_folds: int = 5,
    standardize: bool = True,
    seed: int = 0,
    kernel: str = "linear",
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Graph-classification protocol: stratified ``folds``-fold CV of an SVM on ``embeddings [G, D]``.

    In every outer fold C is chosen by a stratified ``inner_folds``-fold grid search on the training folds
    only (ties keep the smaller C), then refit on them. Standardisation, if on, is fit inside each fit.
    Returns ``{"mean", "std", "per_fold", "C", "val"}``: test accuracies (population std), the C of each fold
    and ``val``, the mean over folds of the chosen C's inner-CV accuracy (a figure that never saw a test fold).

    ``kernel``: "linear" is liblinear's ``LinearSVC`` (squared hinge; MVGRL's choice): libsvm's
    ``SVC(kernel="linear")`` takes ~20 s per fit at C=1e3 on overlapping 170 x 64 data, while this converges in
    milliseconds. It always solves the dual, as every ``LinearSVC`` did when the papers ran (scikit-learn 1.5
    made "auto" the default, which takes the primal once samples outnumber features: other solutions where the
    1000 iterations stop short, and a fit 9 times slower at C=1e3 on 1200 x 512 IMDB-MULTI embeddings).
    "rbf" is libsvm's ``SVC(gamma="scale")`` (GraphCL's and GraphMAE's evaluation).
    ``n_jobs`` processes fit the outer folds in parallel (each fit is seeded, so the result does not change).
    """
    x = _matrix("svm_cv", embeddings)
    y = _labels("svm_cv", labels, x)
    if np.unique(y).size < 2:
        raise ValueError("svm_cv: labels hold a single class; a classifier needs two or more")
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"svm_cv: kernel must be 'linear' or 'rbf', got {kernel!r}")
    if np.bincount(np.unique(y, return_inverse=True)[1]).min() < folds:
        raise ValueError(f"svm_cv: every class needs at least folds={folds} graphs for stratified folds")
    # the seed fixes liblinear's coordinate order when it solves the dual
    svm = LinearSVC(dual=True, random_state=seed) if kernel == "linear" else SVC(kernel="rbf", gamma="scale")
    model = Pipeline([("scale", StandardScaler() if standardize else "passthrough"), ("svm", svm)])
    inner = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(model, {"svm__C": sorted(c_grid)}, cv=inner, scoring="accuracy")
    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as in linear_probe: large C, judged by the inner CV
        result = cross_validate(search, x, y, cv=outer, scoring="accuracy", return_estimator=True,
                                n_jobs=n_jobs)
    scores = result["test_score"]
    return {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "per_fold": [float(s) for s in scores],
        "C": [float(est.best_params_["svm__C"]) for est in result["estimator"]],
        "val": float(np.mean([est.best_score_ for est in result["estimator"]])),
    }


def _matrix(fn: str, x: ArrayLike) -> np.ndarray:
    """Embeddings as a finite float64 ``[N, D]`` numpy array."""
    x = (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)).astype(np.float64, copy=False)
    if x.ndim != 2:
        raise ValueError(f"{fn}: embeddings must be [N, D], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{fn}: embeddings contain NaN or Inf")
    return x


def _labels(fn: str, labels: ArrayLike | None, x: np.ndarray) -> np.ndarray:
    """Class labels as ``[N]``, checked against the ``[N, D]`` embeddings."""
    if labels is None:
        raise ValueError(f"{fn}: labels are required")
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:  # OGB stores node labels as [N, 1]
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{fn}: labels must be [N] class ids (multi-label not supported), got shape {list(y.shape)}")
    if len(y) != len(x):
        raise ValueError(f"{fn}: embeddings {list(x.shape)} and labels {list(y.shape)} differ in length")
    return y


def _splits(fn: str, n: int, **splits: ArrayLike) -> list[np.ndarray]:
    """Each split as an int index array into ``n`` rows: non-empty, in range, pairwise disjoint."""
    out = []
    for name, idx in splits.items():
        idx = idx.detach().cpu().numpy() if isinstance(idx, Tensor) else np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise ValueError(f"{fn}: {name} mask has shape {list(idx.shape)}, expected [{n}]")
            idx = idx.nonzero()[0]
        idx = idx.reshape(-1)
        if idx.size == 0:
            raise ValueError(f"{fn}: {name} split is empty")
        if not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{fn}: {name} split must hold integer indices in [0, {n})")
        out.append(idx)
    names = list(splits)
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            if np.intersect1d(out[i], out[j]).size:  # overlap would let val/test leak into training or selection
                raise ValueError(f"{fn}: {names[i]} and {names[j]} splits overlap")
    return out


def _metric(metric: str | Metric) -> Metric:
    if callable(metric):
        return metric
    if metric == "accuracy":
        return accuracy_score
    raise ValueError(f"linear_probe: unknown metric {metric!r}; use 'accuracy' or f(y_true, y_pred) -> float")


def _evaluator_metric(evaluator: Any) -> tuple[str, Metric]:
    """``(name, f(y_true, y_pred))`` from an ogb ``Evaluator`` (dict in, dict out) or a plain callable."""
    if hasattr(evaluator, "eval_metric"):
        key = evaluator.eval_metric
        return key, lambda y, p: float(evaluator.eval({"y_true": y.reshape(-1, 1), "y_pred": p.reshape(-1, 1)})[key])
    return getattr(evaluator, "__name__", "custom"), evaluator
