"""Reference points for the image SSL runs, in one table with them: a linear probe on raw pixels, on a randomly
initialised backbone, and on the same backbone trained supervised (cross-entropy) for the same number of epochs.

Every row uses the image task's protocol (`graphcl.train.tasks.image.probe_features`): logistic regression on
frozen, standardised features, C chosen on a stratified 10 % of train, test on the published test split, plus a
cosine kNN (k = 200). SSL rows come from finished run directories (`graphcl train configs/<m>/fashion_mnist.yaml
--out runs/vision/<m>`): their `results.json` linear-probe figure, and a kNN recomputed from `encoder.pt`.

    GRAPHCL_DATA=../shared/datasets python benchmarks/vision_baselines.py --config configs/simclr/fashion_mnist.yaml \
        [--runs runs/vision/*] [--skip raw,random,supervised] [--threads 1] [--save runs/vision]

`--save runs/vision` (the vision suite's run root) merges the baselines' figures into runs/vision/baselines.json
under the dataset's name, keeping the other datasets; `graphcl reproduce configs/suites/vision.yaml` prints them in
the results table's "baselines (same protocol)" column.

The backbone, its width, the batch size, epochs (unless `--epochs`) and C grid are those of `--config`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def supervised_backbone(task, epochs: int, lr: float, seed: int, log=print):
    """The task's backbone + a linear classifier trained with cross-entropy for `epochs` epochs (Adam, light
    crop + flip augmentation); returns (backbone in eval mode, test accuracy of its own classifier)."""
    import torch
    from torch import nn

    from graphcl.vision.backbones import build_backbone
    from graphcl.vision.views import ImageViews

    torch.manual_seed(seed)
    backbone = build_backbone(**task.spec).to(task.device)
    head = nn.Linear(backbone.feature_dim, task.data.num_classes).to(task.device)
    model = nn.Sequential(backbone, head)
    views = ImageViews(size=task.data.image_size, global_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0, num_global=1)
    opt = torch.optim.Adam(model.parameters(), lr)
    labels = task.data.train_y.to(task.device)
    for epoch in range(epochs):
        model.train()
        start, total = time.perf_counter(), 0.0
        for x, idx in task.batches():
            loss = nn.functional.cross_entropy(model(views(x)[0]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        log(f"  supervised epoch {epoch + 1}/{epochs}: loss {total / len(task.batches()):.4f}, "
            f"{time.perf_counter() - start:.0f} s")
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(task.data.test_x[i:i + 1024].to(task.device).float() / 255).cpu()
                            for i in range(0, len(task.data.test_x), 1024)])
    return backbone.eval(), float((logits.argmax(1) == task.data.test_y).float().mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="an image config: dataset, backbone, epochs, batch size")
    parser.add_argument("--runs", nargs="*", default=[], help="finished SSL run directories to list")
    parser.add_argument("--skip", default="", help="comma-separated baselines to leave out: raw,random,supervised")
    parser.add_argument("--epochs", type=int, default=None, help="supervised epochs (default: the config's)")
    parser.add_argument("--lr", type=float, default=1e-3, help="supervised Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS / OpenMP threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--save", metavar="SUITE_ROOT", default=None,
                        help="merge the figures into SUITE_ROOT/baselines.json (e.g. runs/vision), the suite's "
                        "run root, for `graphcl reproduce`")
    args = parser.parse_args(argv)

    import torch

    from graphcl.config import load_config
    from graphcl.evaluate.probes import knn_probe
    from graphcl.train.reproduce import baseline_figures, save_baselines
    from graphcl.train.tasks.image import ImageTask, probe_features
    from graphcl.vision.backbones import build_backbone

    torch.set_num_threads(args.threads)
    # scikit-learn's BLAS / OpenMP pools too: on a shared, oversubscribed CPU two spinning BLAS threads made the
    # probes ~5x slower in CPU time than one
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    cfg = load_config(args.config, [f"seeds=[{args.seed}]"])
    task = ImageTask(cfg, torch.device(args.device))
    fit_rows, val_rows = task.val_split(args.seed)
    c_grid, max_iter = list(cfg.eval.c_grid), int(cfg.eval.max_iter)
    knn_k, knn_t = int(task.eval_params["knn_k"]), float(task.eval_params["knn_temperature"])
    skip = set(filter(None, args.skip.split(",")))
    epochs = int(args.epochs or cfg.trainer.epochs)
    rows, saved = [], {}

    def probe(name: str, train, test, seconds: float, note: str = "") -> None:
        start = time.perf_counter()
        r = probe_features(train, task.data.train_y, test, task.data.test_y, fit_rows, val_rows, c_grid, max_iter,
                           args.seed, knn_k, knn_t)
        rows.append((name, 100 * r["test"], 100 * r["val"], 100 * r["knn"], r["C"], seconds, note))
        saved[name] = baseline_figures([r])
        print(f"{name}: linear test {100 * r['test']:.2f} (val {100 * r['val']:.2f}, C {r['C']:g}), "
              f"kNN {100 * r['knn']:.2f}; probe {time.perf_counter() - start:.0f} s", flush=True)

    if "raw" not in skip:
        flat = lambda x: x.reshape(len(x), -1).float() / 255  # noqa: E731
        probe("raw pixels", flat(task.data.train_x), flat(task.data.test_x), 0.0)
    if "random" not in skip:
        torch.manual_seed(args.seed)
        backbone = build_backbone(**task.spec).to(task.device).eval()
        probe("random backbone", task.features(backbone, task.data.train_x), task.features(backbone, task.data.test_x),
              0.0)
    if "supervised" not in skip:
        start = time.perf_counter()
        backbone, own = supervised_backbone(task, epochs, args.lr, args.seed)
        probe(f"supervised backbone ({epochs} ep)", task.features(backbone, task.data.train_x),
              task.features(backbone, task.data.test_x), time.perf_counter() - start,
              f"own classifier {100 * own:.2f}")
    for run in map(Path, args.runs):
        results_file = run / "results.json"
        if not results_file.exists():
            print(f"{run}: no results.json, skipped")
            continue
        from graphcl.train.artifacts import load_encoder

        results = json.loads(results_file.read_text())
        encoder = load_encoder(run, map_location=args.device)
        knn = knn_probe(task.features(encoder, task.data.train_x), task.data.train_y,
                        task.features(encoder, task.data.test_x), task.data.test_y, k=knn_k, temperature=knn_t)
        epochs_run = results.get("epochs", ["?"])[0]
        rows.append((f"{results['method']} ({epochs_run} ep)", results["test"]["mean"], results["val"]["mean"],
                     100 * knn, None, results.get("train_seconds", 0.0), f"{len(results['test']['per_seed'])} seed(s)"))

    print(f"\n{task.name}, backbone {task.spec['name']} width {task.spec['width']}, batch {task.batch_size}; "
          f"linear probe: C from {c_grid} on a stratified {task.eval_params['val_fraction']:.0%} of train; "
          f"kNN k={knn_k}, T={knn_t}; torch {torch.__version__}, {args.device}, {args.threads} thread(s)\n")
    print("| features | linear test (%) | linear val (%) | kNN test (%) | C | train s | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, test, val, knn, c, seconds, note in rows:
        c_text = "" if c is None else f"{c:g}"
        print(f"| {name} | {test:.2f} | {val:.2f} | {knn:.2f} | {c_text} | {seconds:.0f} | {note} |")
    if args.save and saved:
        print(f"\nmerged {', '.join(saved)} into {save_baselines(args.save, task.name, saved)} ({task.name})")


if __name__ == "__main__":
    main()
