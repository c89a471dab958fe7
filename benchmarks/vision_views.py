"""Image views on a batch: graphcl's batched tensor operations vs. a per-image loop, in images per second.

"batched" is one call on the whole batch `[B, C, H, W]` (`graphcl.vision.views`); "loop" applies the same
function to one image at a time (`fn(x[i:i+1])` for every i, then `torch.cat`), which is what a per-image
Dataset transform does, minus PIL decoding and the DataLoader. Both draw their random parameters from the same
kind of generator. Each time is the median of several runs after a warm-up; images/s = B / time.

    python benchmarks/vision_views.py [--batch 512] [--size 32] [--channels 3] [--repeats 5] [--threads 1]
                                      [--device cpu|cuda]
"""
from __future__ import annotations

import argparse

from harness import device_label, median_seconds


def views(size: int) -> dict:
    from graphcl.vision import views as V

    pipeline = V.ImageViews(size=size, blur_p=0.5, solarize_p=0.2)
    return {  # name -> f(x, generator)
        "random_resized_crop + flip": lambda x, g: V.random_resized_crop(x, size, flip_p=0.5, generator=g),
        "color_jitter (p=0.8)": lambda x, g: V.color_jitter(x, p=0.8, generator=g),
        "random_grayscale (p=0.2)": lambda x, g: V.random_grayscale(x, p=0.2, generator=g),
        "gaussian_blur (p=0.5)": lambda x, g: V.gaussian_blur(x, p=0.5, generator=g),
        "solarize (p=0.2)": lambda x, g: V.solarize(x, p=0.2, generator=g),
        "jigsaw 3x3": lambda x, g: V.jigsaw(x, 3, generator=g)[0],
        "SimCLR/BYOL pipeline (1 view)": lambda x, g: pipeline.view(x, size, (0.08, 1.0), 0.5, 0.2, g),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32, help="image side (CIFAR-10: 32, Fashion-MNIST: 28)")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    x = torch.rand(args.batch, args.channels, args.size, args.size, generator=torch.Generator().manual_seed(0))
    x = x.to(args.device)
    gen = torch.Generator(device=args.device)
    print(f"{args.batch} images {args.channels} x {args.size} x {args.size}; {device_label(args.device)}, "
          f"{args.threads} thread(s); median of {args.repeats} runs\n")
    print("| view | batched (images/s) | per-image loop (images/s) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, fn in views(args.size).items():
        gen.manual_seed(0)
        batched = median_seconds(lambda: fn(x, gen), args.repeats, sync)
        # the loop sees exactly the same images, one at a time
        loop = median_seconds(lambda: torch.cat([fn(x[i:i + 1], gen) for i in range(len(x))]), args.repeats, sync)
        print(f"| {name} | {args.batch / batched:,.0f} | {args.batch / loop:,.0f} | {loop / batched:.0f}x |",
              flush=True)


if __name__ == "__main__":
    main()
