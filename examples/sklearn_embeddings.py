"""Frozen graphcl embeddings in scikit-learn: a logistic-regression probe and k-means clustering (NMI).

    python examples/sklearn_embeddings.py                          # CCA-SSG on Cora, configs/ccassg/cora.yaml
    GRAPHCL_EXAMPLE_FAST=1 python examples/sklearn_embeddings.py   # 3 epochs, a narrow encoder

The embeddings are a `[N, D]` tensor; `.numpy()` hands them to any scikit-learn estimator.
"""
import argparse
import os
import tempfile
from pathlib import Path

import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import graphcl
from graphcl.data import load_dataset

FAST = os.environ.get("GRAPHCL_EXAMPLE_FAST") == "1"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ccassg" / "cora.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description="Probe and cluster frozen embeddings with scikit-learn.")
    p.add_argument("--epochs", type=int, default=3 if FAST else 50)
    p.add_argument("--hidden", type=int, default=64 if FAST else 512)
    args = p.parse_args()

    data = load_dataset("Cora", normalize_features=True)[0]
    encoder_size = {"hidden_channels": args.hidden, "out_channels": args.hidden}
    with tempfile.TemporaryDirectory() as tmp:
        run = graphcl.pretrain(data, method="ccassg", config=CONFIG, out=f"{tmp}/run", seeds=[0],
                               trainer={"epochs": args.epochs, "progress": False},
                               model={"encoder": encoder_size})
    with torch.no_grad():
        z = run.encoder(data.x, data.edge_index).numpy()  # [N, D] node embeddings
    y = data.y.numpy()
    train, test = data.train_mask.numpy(), data.test_mask.numpy()
    print(f"embeddings: {z.shape[0]} nodes x {z.shape[1]} dimensions")

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    probe.fit(z[train], y[train])
    print(f"LogisticRegression on the {train.sum()} training nodes: test accuracy "
          f"{100 * probe.score(z[test], y[test]):.2f} %")

    clusters = KMeans(n_clusters=int(y.max()) + 1, n_init=10, random_state=0).fit_predict(z)
    print(f"KMeans with {int(y.max()) + 1} clusters on all nodes: NMI {normalized_mutual_info_score(y, clusters):.4f}")


if __name__ == "__main__":
    main()
