"""CPC training speed on FSDD: sequences per second with `batch`, `same_sequence` and `queue` negatives.

Same encoder, batch and crop length for every mode (the FSDD config's encoder; crops of a fixed length so
the modes see identical work apart from the negatives); warm-up steps are not timed.

    GRAPHCL_DATA=../shared/datasets python benchmarks/cpc_speed.py [--steps 20] [--batch-size 32] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from graphcl.data.sequences import load_fsdd, standardize
from graphcl.sequence import CPC, SequenceBatch, SequenceView, build_sequence_encoder

MODES = [("batch", 16), ("same_sequence", 16), ("queue", 16), ("queue", None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--crop", type=int, default=4000, help="samples per training crop (0.5 s)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--prediction-steps", type=int, default=6)
    ap.add_argument("--queue-size", type=int, default=4096)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train, _ = load_fsdd()
    standardize(train)
    x, mask = train.x.to(device), train.mask.to(device)
    print(f"CPC on FSDD, {device}, {torch.get_num_threads()} threads: batch {args.batch_size}, crops of {args.crop} samples, "
          f"width {args.width}, K = {args.prediction_steps}, {args.steps} timed steps")
    print("| negatives | per anchor | sequences / s | ms / step |")
    print("|---|---|---:|---:|")
    for mode, num in MODES:
        torch.manual_seed(0)
        enc = build_sequence_encoder("cpc_audio", 1, args.width, args.width, context="gru", context_channels=args.width)
        model = CPC(enc, steps=args.prediction_steps, negatives=mode, num_negatives=num, queue_size=args.queue_size,
                    view=SequenceView(args.crop, args.crop)).to(device)
        opt = torch.optim.Adam(model.parameters(), 5e-4)
        g = torch.Generator().manual_seed(0)
        elapsed = 0.0
        for step in range(args.warmup + args.steps):
            idx = torch.randint(len(x), (args.batch_size,), generator=g).to(device)
            batch = SequenceBatch(x[idx], mask[idx])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            loss = model(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.after_step(step + 1, args.warmup + args.steps)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= args.warmup:
                elapsed += time.perf_counter() - start
        per = "whole queue" if num is None else str(num)
        print(f"| {mode} | {per} | {args.steps * args.batch_size / elapsed:.1f} | {1000 * elapsed / args.steps:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
