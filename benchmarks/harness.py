"""Shared pieces of the side-by-side benchmarks: interleaved epoch timing, per-variant memory in a child
process, the device label printed above each table, and PyGCL imported with stand-ins for what it imports
but the benchmarked methods never call."""
from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import time
import types
from typing import Callable


def time_interleaved(variants: dict[str, Callable[[], None]], epochs: int, device: str,
                     warmup: int = 5) -> dict[str, float]:
    """Seconds per epoch of each variant, epochs alternated so all see the same machine load."""
    import torch

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for epoch in variants.values():
        for _ in range(warmup):
            epoch()
    seconds = {name: 0.0 for name in variants}
    for _ in range(epochs):
        for name, epoch in variants.items():
            sync()
            start = time.perf_counter()
            epoch()
            sync()
            seconds[name] += (time.perf_counter() - start) / epochs
    return seconds


def median_seconds(fn: Callable[[], None], repeats: int, sync: Callable[[], None]) -> float:
    """Median seconds of `repeats` calls of `fn` after one warm-up call; `sync` waits for the device."""
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_peak_mb(epoch: Callable[[], None], epochs: int, device: str) -> float:
    """Peak memory (MB) over `epochs` calls of `epoch`, from a reset peak: the CUDA allocator peak, or on CPU the
    peak resident set size of the process (data included); meant for a child process where nothing else ran."""
    import torch

    from graphcl.train.trainer import peak_memory_mb, reset_peak_memory

    reset_peak_memory(torch.device(device))
    for _ in range(epochs):
        epoch()
    return peak_memory_mb(torch.device(device))


def child_result(script: str, variant: str, *args: str):
    """Run `script --variant VARIANT ARGS` in a fresh process and return the JSON its last line prints."""
    out = subprocess.run([sys.executable, script, "--variant", variant, *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def device_label(device: str) -> str:
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return f"{name}, torch {torch.__version__}"


def _stand_in(name: str, *attrs: str) -> None:
    """An importable module `name`, when there is none, whose `attrs` raise when called (the benchmarked
    methods call none)."""
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    module = types.ModuleType(name)

    def missing(attr: str):
        def fail(*args, **kwargs):
            raise RuntimeError(f"{name}.{attr} is a stand-in of benchmarks/harness.py, not the real module")

        return fail

    for attr in attrs:
        setattr(module, attr, missing(attr))
    sys.modules[name] = module


def import_pygcl():
    _stand_in("dgl", "DGLGraph", "graph")
    _stand_in("torch_sparse", "SparseTensor", "coalesce")
    _stand_in("torch_scatter", "scatter")
    import warnings

    warnings.filterwarnings("ignore", message=".*dropout_adj.*")  # PyGCL's EdgeRemoving calls PyG's dropout_adj
    import GCL.augmentors as A
    import GCL.losses as L
    from GCL.models import DualBranchContrast

    return A, L, DualBranchContrast
