"""Plots of a finished run: training curves, a t-SNE of its embeddings, positive vs. negative similarities.

`graphcl plot RUN_DIR [--out DIR]` calls `plot_run`; `graphcl plot --compare RUN_DIR ...` calls
`plot_compare`. Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no display, no
global pyplot state) and written as PNG files:

- `curves.png`: every numeric per-epoch key of `metrics.jsonl` (loss first; diagnostics when logged), one
  line per seed;
- `tsne.png`: a t-SNE (`sklearn.manifold.TSNE`) of the run's embeddings, as `graphcl embed` computes them,
  coloured by label; at most `max_points` points (a fixed random subset above that);
- `similarity.png`: histograms of the cosine similarity of positive and negative pairs. For node and graph
  runs a positive pair is an embedding and the embedding of a random view of the same node / graph, a negative
  pair two different nodes / graphs; for other runs (or when the encoder cannot take a view) same-label vs.
  different-label pairs. The figure's title says which.

matplotlib is an optional dependency: `pip install -e .[plot]`.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from graphcl.train.rundir import RunDirError

__all__ = ["plot_run", "plot_compare", "read_metrics", "plot_curves", "plot_tsne", "plot_similarity"]

MAX_POINTS = 2000  # t-SNE and pair sampling cap
NOT_PLOTTED = ("epoch", "seed")  # per-epoch keys that are coordinates, not curves


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.0, 4.0)):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("graphcl plot needs matplotlib: pip install -e .[plot]") from None
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, list(axes.flat)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")  # a Figure without pyplot renders on the Agg canvas
    return path


# -- the run directory ----------------------------------------------------------------------------
def _check_run(run_dir: str | os.PathLike) -> Path:
    """`run_dir` as a Path, or a one-line `RunDirError` saying why it is not a run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        why = "a file, not a directory" if path.exists() else "no such directory"
        raise RunDirError(f"{path} is not a run directory ({why})")
    missing = [name for name in ("config.yaml", "metrics.jsonl") if not (path / name).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a run directory (no {' or '.join(missing)}; "
                          f"give a directory written by `graphcl train`)")
    return path


def read_metrics(run_dir: str | os.PathLike) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """`metrics.jsonl` as `{seed: {key: [(epoch, value), ...]}}` for every finite numeric key but epoch and seed."""
    path = _check_run(run_dir) / "metrics.jsonl"
    curves: dict[int, dict[str, list[tuple[int, float]]]] = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if not isinstance(row, dict) or "epoch" not in row:
            continue
        seed = int(row.get("seed", 0))
        for key, value in row.items():
            if key in NOT_PLOTTED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                curves.setdefault(seed, {}).setdefault(key, []).append((int(row["epoch"]), float(value)))
    if not curves:
        raise RunDirError(f"{path} holds no per-epoch metrics yet")
    return curves


def _keys(curves: dict[int, dict[str, list]]) -> list[str]:
    keys = sorted({k for per_seed in curves.values() for k in per_seed})
    return sorted(keys, key=lambda k: (k != "loss", k))  # loss first


def _title(run_dir: Path) -> str:
    """"dgi on Cora (runs/quick)" from the run's config, or the directory's name."""
    try:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(run_dir / "config.yaml")
        return f"{cfg.model.method} on {cfg.data.name} ({run_dir.name})"
    except Exception:
        return run_dir.name


# -- figures ---------------------------------------------------------------------------------------
def plot_curves(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """`curves.png` in `out`: one panel per numeric key of `metrics.jsonl`, one line per seed."""
    run_dir = _check_run(run_dir)
    curves = read_metrics(run_dir)
    from matplotlib.ticker import MaxNLocator

    keys = _keys(curves)
    cols = min(len(keys), 3)
    fig, axes = _figure(math.ceil(len(keys) / cols), cols, size=(5.0, 3.5))
    epochs_seen = [e for per_seed in curves.values() for points in per_seed.values() for e, _ in points]
    span = (min(epochs_seen), max(epochs_seen))
    pad = max(0.5, 0.03 * (span[1] - span[0]))  # every panel on the run's epoch range, even a one-point one
    for ax, key in zip(axes, keys):
        ax.set_xlim(span[0] - pad, span[1] + pad)
        for seed in sorted(curves):
            points = curves[seed].get(key)
            if points:
                epochs, values = zip(*points)
                sparse = len(points) <= 30 or points[-1][0] - points[0][0] + 1 > 2 * len(points)
                ax.plot(epochs, values, label=f"seed {seed}", linewidth=1.2, marker="o" if sparse else None,
                        markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    if len(curves) > 1:
        axes[0].legend(fontsize="small")
    fig.suptitle(_title(run_dir))
    return _save(fig, Path(out) / "curves.png")


def plot_compare(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, key: str = "loss") -> Path:
    """`compare_<key>.png` in `out`: the `key` curve of several runs overlaid (mean over each run's seeds)."""
    from matplotlib.ticker import MaxNLocator

    paths = [_check_run(r) for r in run_dirs]
    fig, (ax,) = _figure(size=(7.0, 4.5))
    for path in paths:
        per_epoch: dict[int, list[float]] = {}
        for per_seed in read_metrics(path).values():
            for epoch, value in per_seed.get(key, []):
                per_epoch.setdefault(epoch, []).append(value)
        if not per_epoch:
            raise RunDirError(f"{path / 'metrics.jsonl'} has no {key!r} values")
        epochs = sorted(per_epoch)
        seeds = max(len(v) for v in per_epoch.values())
        label = _title(path) + (f", mean of {seeds} seeds" if seeds > 1 else "")
        ax.plot(epochs, [float(np.mean(per_epoch[e])) for e in epochs], label=label, linewidth=1.2)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"{key} per epoch")
    return _save(fig, Path(out) / f"compare_{key}.png")


def _subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `max_points` of `n` rows (all of them when n <= max_points)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def plot_tsne(z: Any, labels: Any, path: str | os.PathLike, title: str = "", max_points: int = MAX_POINTS,
              seed: int = 0) -> Path:
    """A t-SNE of `z [N, D]` coloured by `labels [N]` (or None) into `path`; at most `max_points` points."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    z = _numpy(z)
    keep = _subsample(len(z), max_points, seed)
    x = z[keep]
    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    if x.shape[1] > 50:  # the usual PCA step first: faster, and t-SNE's neighbourhoods barely change
        x = PCA(50, random_state=seed).fit_transform(x)
    xy = TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", learning_rate="auto",
              random_state=seed).fit_transform(x)
    fig, (ax,) = _figure(size=(6.5, 6.0))
    y = None if labels is None else _numpy(labels).reshape(-1)[keep]
    if y is not None and y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)  # class ids stored as floats
    if y is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=4)
    else:
        from matplotlib import colormaps

        classes = np.unique(y)
        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            mask = y == c
            ax.scatter(xy[mask, 0], xy[mask, 1], s=4, color=cmap(i % cmap.N), label=str(c))
        if len(classes) <= 20:
            ax.legend(title="label", fontsize="small", markerscale=3, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    shown = f"{len(keep)} of {len(z)}" if len(keep) < len(z) else f"all {len(z)}"
    ax.set_title(f"{title}\nt-SNE of {shown} embeddings".strip())
    return _save(fig, Path(path))


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def _negative_partners(n: int, rng: np.random.Generator) -> np.ndarray:
    """For each of n rows, a different row drawn uniformly."""
    partner = rng.integers(0, n - 1, size=n)
    return partner + (partner >= np.arange(n))


def plot_similarity(z: Any, path: str | os.PathLike, z_view: Any = None, labels: Any = None, title: str = "",
                    what: str = "", max_points: int = MAX_POINTS, seed: int = 0) -> Path:
    """Histograms of cosine similarities of positive vs. negative pairs into `path`.

    With `z_view [N, D]` (embeddings of a random view, row-aligned with `z`): positives `(z_i, z_view_i)`,
    negatives `(z_i, z_view_j)`, j != i. Otherwise with `labels [N]`: positives `(z_i, z_j)` with the same label,
    negatives with different labels. At most `max_points` anchors; `what` names the view in the title.
    """
    z = _numpy(z)
    rng = np.random.default_rng(seed)
    anchors = _subsample(len(z), max_points, seed)
    if len(anchors) < 2:
        raise ValueError("need at least 2 embeddings for pairs")
    if z_view is not None:
        v = _numpy(z_view)
        pos = _cosine_rows(z[anchors], v[anchors])
        neg = _cosine_rows(z[anchors], v[anchors[_negative_partners(len(anchors), rng)]])
        kind = f"positive: the same {what or 'item'} in a random view; negative: another {what or 'item'}"
    elif labels is not None:
        y = _numpy(labels).reshape(-1)
        i, j = rng.choice(anchors, size=(2, 20 * len(anchors)))
        i, j = i[i != j], j[i != j]
        same = y[i] == y[j]
        sims = _cosine_rows(z[i], z[j])
        pos, neg = sims[same], sims[~same]
        kind = "positive: same label; negative: different labels (no views)"
    else:
        raise ValueError("plot_similarity needs z_view or labels")
    fig, (ax,) = _figure(size=(6.5, 4.5))
    both = np.concatenate([pos, neg])
    bins = np.linspace(both.min(), both.max() + 1e-6, 51)
    for values, name in ((pos, "positive"), (neg, "negative")):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.55,
                    label=f"{name} ({len(values)} pairs, mean {values.mean():.3f})")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    ax.set_title(f"{title}\n{kind}".strip(), fontsize="medium")
    return _save(fig, Path(path))


# -- embeddings of a run ---------------------------------------------------------------------------
def _labels(task: Any, n: int) -> Optional[np.ndarray]:
    """The labels of the rows `task.embed` returns, where the task keeps them (None otherwise)."""
    for owner, name in (("data", "y"), (None, "labels"), ("data", "test_y")):
        obj = getattr(task, owner, None) if owner else task
        y = getattr(obj, name, None) if obj is not None else None
        if y is not None and hasattr(y, "shape") and len(y) == n:
            y = _numpy(y)
            return y[:, 0] if y.ndim == 2 else y
    return None


def _view_embeddings(task: Any, encoder: Any, seed: int) -> tuple[Optional[Any], str, str]:
    """(embeddings of one random view, row-aligned with `task.embed`, what a row is, the view) or (None, ...)."""
    import torch

    torch.manual_seed(seed)
    kind = type(task).__name__
    with torch.no_grad():
        if kind == "NodeTask":
            from graphcl.graph.views import edge_feature_view

            data = task.data.to(task.device)
            x, edge_index = edge_feature_view(data, 0.2, 0.2)
            return encoder(x, edge_index).float().cpu(), "node", "20 % of edges dropped, 20 % of feature columns masked"
        if kind == "GraphTask":
            from omegaconf import OmegaConf

            from graphcl.graph.readout import graph_embeddings
            from graphcl.graph.views import make_view, take_graphs

            view = make_view("drop_nodes", p=0.2)
            pool = OmegaConf.to_container(task.cfg.model.params, resolve=True).get("pool", "sum")
            parts = []
            n = task.graphs.num_graphs
            for start in range(0, n, 256):
                index = torch.arange(start, min(start + 256, n), device=task.device)
                parts.append(graph_embeddings(encoder, view(take_graphs(task.graphs, index)), pool))
            return torch.cat(parts).float().cpu(), "graph", "20 % of nodes dropped"
    return None, "", ""


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, dataset: Any = None,
             max_points: int = MAX_POINTS, seed: Optional[int] = None, device: str = "cpu",
             log=print) -> list[Path]:
    """Write `curves.png`, `tsne.png` and `similarity.png` for the run in `run_dir` into `out` (default: the run
    directory); returns the files written.

    The embeddings come from the run's saved encoder (pretraining `seed`, default the first) on the run's
    dataset, reloaded from its config, or on `dataset` (needed for runs of `graphcl.pretrain` on a user's own
    data). Where the embeddings cannot be made (no `encoder.pt` yet, a dataset that cannot be reloaded) only
    the curves are drawn and `log` says why.
    """
    import torch

    run_dir = _check_run(run_dir)
    out = Path(out) if out is not None else run_dir
    title = _title(run_dir)
    written = [plot_curves(run_dir, out)]
    if not (run_dir / "encoder.pt").is_file():
        log(f"no encoder.pt in {run_dir} (the run has not finished a seed): drew the curves only")
        return written
    from graphcl.config import load_config
    from graphcl.train.artifacts import encoder_from_file, read_encoder_file
    from graphcl.train.tasks import get_task

    cfg = load_config(run_dir / "config.yaml")
    try:
        task = get_task(cfg, torch.device(device), dataset)
    except Exception as e:  # e.g. a `graphcl.pretrain` run on a user's own graph
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log(f"cannot reload dataset {cfg.data.name!r} ({message}): drew the curves only; "
            f"pass the data as plot_run(..., dataset=...)")
        return written
    enc = read_encoder_file(run_dir)
    encoder = encoder_from_file(enc, seed).to(device)
    z = task.embed(encoder)
    labels = _labels(task, len(z))
    written.append(plot_tsne(z, labels, out / "tsne.png", title=title, max_points=max_points))
    z_view, what, view = None, "", ""
    try:
        z_view, what, view = _view_embeddings(task, encoder, seed=0)
    except Exception as e:  # an encoder that cannot take the view: fall back to label pairs
        log(f"random views failed ({type(e).__name__}: {str(e).strip()[:120]}); similarity by labels instead")
    if z_view is not None and z_view.shape != z.shape:
        z_view = None
    if z_view is not None or labels is not None:
        written.append(plot_similarity(z, out / "similarity.png", z_view=z_view, labels=labels,
                                       title=f"{title}" + (f"\nview: {view}" if view else ""), what=what,
                                       max_points=max_points))
    else:
        log("neither random views nor labels for this run: no similarity.png")
    return written
