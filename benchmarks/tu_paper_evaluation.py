"""Graph-level runs read the way InfoGraph's own code reads them: how much of a gap to a published TU figure is
the reading rather than the embeddings?

fanyun-sun/InfoGraph `unsupervised/main.py` (GraphCL's `unsupervised_TU` inherits it) evaluates the embeddings
before training and after every epoch with four classifiers -- a torch logistic regression, `SVC` and
`LinearSVC` with C from {1e-3..1e3} by inner 5-fold CV, a random forest -- each on fresh, unseeded stratified
10-fold splits of the raw embeddings, and logs every test-fold mean; no validation figure exists, so a figure
read off that log (the best epoch, the best classifier) is selected on the test folds.

This script trains a config's seeds exactly as `graphcl train` does (same task, method, initialisation and
Trainer) and, at every epoch 0..E, scores the encoder with graphcl's `svm_cv` and with the official
classifiers (the random forest left out: its 1000-tree grid costs minutes per epoch here). Per seed it prints
ours at the last epoch (the table's figure), the official SVC at the last epoch, and the maxima over epochs
(SVC; every classifier) that a test-fold reading gives.

    OMP_NUM_THREADS=1 GRAPHCL_DATA=../shared/datasets python benchmarks/tu_paper_evaluation.py \
        configs/infograph/ptc_mr.yaml [configs/infograph/mutag.yaml ...] [--seeds 0 1 2 3 4]
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC, LinearSVC
from torch import nn

from graphcl.config import load_config
from graphcl.evaluate.probes import svm_cv
from graphcl.train.artifacts import encoder_from_file
from graphcl.train.build import build_optimizer, build_scheduler, initialise
from graphcl.train.checkpoint import rng_state, seed_everything, set_rng_state
from graphcl.train.tasks import get_task
from graphcl.train.trainer import Trainer
from paper_evaluation import logreg_accuracy, ms

C_GRID = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3]
CLASSIFIERS = ("logreg", "svc", "linearsvc")


def _folds(y: np.ndarray, rng: np.random.Generator):
    # the official splits are unseeded: a fresh shuffle at every call
    return StratifiedKFold(10, shuffle=True, random_state=int(rng.integers(2**31))).split(np.zeros(len(y)), y)


def logreg_folds(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
    """InfoGraph's LogReg: `logreg_accuracy` (DGI's: 100 Adam steps, lr 0.01) on the raw training folds, test
    accuracy of the last step, mean over the 10 folds."""
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return float(np.mean([logreg_accuracy(xt, yt, train, test, gen) for train, test in _folds(y, rng)]))


def svm_accuracy(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, linear: bool) -> float:
    """`SVC()` (RBF) or `LinearSVC()` with C by `GridSearchCV(cv=5)` on the raw training folds, mean test accuracy.
    Defaults as in the scikit-learn of 2019-2020: LinearSVC solved the dual; SVC's gamma is taken as "scale"
    (the default from 0.22 on; before it, 1 / D)."""
    accuracies = []
    for train, test in _folds(y, rng):
        svm = LinearSVC(dual=True) if linear else SVC(gamma="scale")
        search = GridSearchCV(svm, {"C": C_GRID}, cv=5, scoring="accuracy")
        search.fit(x[train], y[train])
        accuracies.append(float((search.predict(x[test]) == y[test]).mean()))
    return float(np.mean(accuracies))


def official(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    return {"logreg": logreg_folds(x, y, rng), "svc": svm_accuracy(x, y, rng, linear=False),
            "linearsvc": svm_accuracy(x, y, rng, linear=True)}


def read_seed(cfg, task, seed: int) -> list[dict]:
    """Train `seed` as `graphcl train` does; per epoch 0..E: our `svm_cv` test mean and the official figures."""
    builder, spec = task.encoder_spec()
    y = task.labels.cpu().numpy()
    rng = np.random.default_rng(10_000 + seed)
    rows = []

    def score(method: nn.Module, epoch: int) -> None:
        draws = rng_state()  # the classifiers must not shift the training's random stream
        state = {k: v.detach().cpu().clone() for k, v in method.encoder.state_dict().items()}
        encoder = encoder_from_file({"builder": builder, "spec": spec, "seeds": [seed], "state_dicts": [state]})
        x = task.embed(encoder).double().numpy()
        ours = svm_cv(x, y, folds=cfg.eval.folds, c_grid=list(cfg.eval.c_grid), seed=seed, **task.svm)["mean"]
        rows.append({"epoch": epoch, "ours": ours, **official(x, y, rng)})
        set_rng_state(draws)

    if cfg.trainer.patience:
        raise SystemExit(f"trainer.patience is {cfg.trainer.patience}: early stopping would restore another "
                         "epoch's model than the last one this reading scores; pass a config without it")
    if cfg.trainer.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)  # as `graphcl train` on CPU
    seed_everything(seed)
    method = initialise(task.build_method(), cfg.model.init)
    optimizer = build_optimizer(cfg, method.parameters())
    trainer = Trainer(method, optimizer, task.batches, epochs=cfg.trainer.epochs, patience=cfg.trainer.patience,
                      amp=False, checkpoint_every=10**9, progress=False, scheduler=build_scheduler(cfg, optimizer),
                      on_epoch=lambda row: score(method, row["epoch"]),
                      steps_per_epoch=getattr(task, "steps_per_epoch", None))
    score(method, 0)  # the official log starts before training
    trainer.fit()
    return rows


def main(configs: list[str], seeds: list[int] | None) -> None:
    warnings.simplefilter("ignore", ConvergenceWarning)
    summary = []
    for path in configs:
        cfg = load_config(path)
        task = get_task(cfg, torch.device("cpu"))
        cols = {k: [] for k in ("ours_last", "svc_last", "best_last", "ours_max", "svc_max", "any_max")}
        for seed in seeds if seeds is not None else list(cfg.seeds):
            rows = read_seed(cfg, task, seed)
            last = rows[-1]
            picks = {"ours_last": last["ours"], "svc_last": last["svc"],
                     "best_last": max(last[c] for c in CLASSIFIERS),
                     "ours_max": max(r["ours"] for r in rows), "svc_max": max(r["svc"] for r in rows),
                     "any_max": max(r[c] for r in rows for c in CLASSIFIERS)}
            for k, v in picks.items():
                cols[k].append(v)
            best = max(((r["epoch"], c) for r in rows for c in CLASSIFIERS), key=lambda ec: rows[ec[0]][ec[1]])
            print(f"{path} seed {seed}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in picks.items())
                  + f" (best: {best[1]} at epoch {best[0]})", flush=True)
        summary.append((f"{task.name} ({cfg.model.method})", cols))
    print("\n| run | ours, last epoch (svm_cv) | official SVC, last epoch | best classifier, last epoch "
          "| ours, best epoch | official SVC, best epoch | best epoch and classifier |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    columns = ("ours_last", "svc_last", "best_last", "ours_max", "svc_max", "any_max")
    for name, c in summary:
        print(f"| {name} | " + " | ".join(ms([100 * v for v in c[k]]) for k in columns) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="default: the config's")
    args = parser.parse_args()
    main(args.configs, args.seeds)
