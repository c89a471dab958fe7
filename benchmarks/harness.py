"""Shared pieces of the side-by-side benchmarks: interleaved epoch timing, per-variant memory in a child
process, and the device label printed above each table."""
from __future__ import annotations

import json
import subprocess
import sys
import time
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


def child_result(script: str, variant: str, *args: str):
    """Run `script --variant VARIANT ARGS` in a fresh process and return the JSON its last line prints."""
    out = subprocess.run([sys.executable, script, "--variant", variant, *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def device_label(device: str) -> str:
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return f"{name}, torch {torch.__version__}"
