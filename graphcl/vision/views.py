"""Image views as batched tensor operations: one call transforms a whole batch on its own device.

Every function takes images `x` `[B, C, H, W]` with values in [0, 1] (C = 1 or 3) and draws its random
parameters, one set per image, from `generator` (the default generator of `x`'s device when None). A CPU
generator works with CUDA images: parameters are drawn on the generator's device and moved, so a run is
reproducible from one seed whatever the device. Nothing loops over images in Python.

`ImageViews` composes them into the SimCLR / BYOL / SwAV / DINO pipelines (2 global + k local crops);
`jigsaw` cuts PIRL's permuted 3 x 3 patches.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "random_resized_crop",
    "horizontal_flip",
    "color_jitter",
    "random_grayscale",
    "gaussian_blur",
    "solarize",
    "jigsaw",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "ImageViews",
]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as PIL's "L" conversion


# ----------------------------------------------------------------------------- helpers


def _check_images(fn: str, x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"{fn}: x must be [B, C, H, W] with B >= 1 and C in (1, 3), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{fn}: x must be a float tensor in [0, 1], got dtype {x.dtype}")


def _check_prob(fn: str, name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: {name} must lie in [0, 1], got {p}")


def _check_range(fn: str, name: str, r: Sequence[float], low: float = 0.0) -> tuple[float, float]:
    if len(r) != 2 or not low <= r[0] <= r[1]:
        raise ValueError(f"{fn}: {name} must be (min, max) with {low} <= min <= max, got {tuple(r)}")
    return float(r[0]), float(r[1])


def _uniform(n: int, low: float, high: float, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """`[n]` draws from U(low, high) in x's dtype on x's device, drawn on the generator's device."""
    device = generator.device if generator is not None else x.device
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float32)
    return (low + (high - low) * u).to(device=x.device, dtype=x.dtype)


def _coin(n: int, p: float, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """`[n]` booleans, each True with probability p (always drawn, so the stream does not depend on p)."""
    return _uniform(n, 0.0, 1.0, x, generator) < p


def _per_image(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _gray(x: Tensor) -> Tensor:
    """Luma `[B, 1, H, W]` of RGB (or the single channel of grayscale) images."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


# ----------------------------------------------------------------------------- geometric


def random_resized_crop(
    x: Tensor,
    size: int | tuple[int, int],
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    flip_p: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random crop of each image, resized (bilinear) to `size`: `[B, C, H, W] -> [B, C, h, w]`.

    The crop covers a fraction U(scale) of the image area with aspect ratio (width / height) log-uniform in
    `ratio`; a side that would exceed the image is clamped to it (torchvision instead retries then falls back
    to a centre crop). The crop's position is uniform over the positions that keep it inside the image.
    `flip_p`: probability of also mirroring the crop horizontally (free: it is a sign in the same affine map).
    """
    fn = "random_resized_crop"
    _check_images(fn, x)
    out_h, out_w = (size, size) if isinstance(size, int) else tuple(size)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"{fn}: size must be positive, got {size}")
    s_lo, s_hi = _check_range(fn, "scale", scale)
    if s_hi > 1.0 or s_lo <= 0:
        raise ValueError(f"{fn}: scale must lie in (0, 1], got {tuple(scale)}")
    r_lo, r_hi = _check_range(fn, "ratio", ratio, low=1e-6)
    _check_prob(fn, "flip_p", flip_p)
    b, _, h, w = x.shape
    area = _uniform(b, s_lo, s_hi, x, generator)
    r = _uniform(b, math.log(r_lo), math.log(r_hi), x, generator).exp()
    # fractions of the width / height: (fw W) (fh H) = area H W and (fw W) / (fh H) = r
    fw = (area * r * h / w).sqrt().clamp(max=1.0)
    fh = (area / r * w / h).sqrt().clamp(max=1.0)
    # centres in affine_grid's [-1, 1] coordinates, keeping the crop inside the image
    cx = (2 * _uniform(b, 0.0, 1.0, x, generator) - 1) * (1 - fw)
    cy = (2 * _uniform(b, 0.0, 1.0, x, generator) - 1) * (1 - fh)
    sign = 1 - 2 * _coin(b, flip_p, x, generator).to(x.dtype)
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = fw * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = fh, cy
    grid = F.affine_grid(theta, [b, x.shape[1], out_h, out_w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def horizontal_flip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability p: `[B, C, H, W] -> [B, C, H, W]`."""
    _check_images("horizontal_flip", x)
    _check_prob("horizontal_flip", "p", p)
    flip = _per_image(_coin(len(x), p, x, generator))
    return torch.where(flip, x.flip(-1), x)


def jigsaw(
    x: Tensor, grid: int = 3, patch_size: int | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """PIRL's jigsaw transform: `[B, C, H, W] -> (patches [B, grid^2, C, p, p], perm [B, grid^2])`.

    The image (its top-left `grid * t` square, t = min(H, W) // grid) is cut into grid x grid tiles of side t,
    numbered in raster order. Each tile is cropped to `patch_size` p <= t at a random offset (PIRL's jitter
    between patches; p = t keeps the whole tile), then the tiles are shuffled per image: `patches[b, j]` is
    tile `perm[b, j]` of image b, perm a uniform random permutation of 0..grid^2 - 1.
    """
    fn = "jigsaw"
    _check_images(fn, x)
    if grid < 1:
        raise ValueError(f"{fn}: grid must be >= 1, got {grid}")
    b, c, h, w = x.shape
    t = min(h, w) // grid
    p = t if patch_size is None else patch_size
    if t < 1 or not 1 <= p <= t:
        raise ValueError(f"{fn}: patch_size must lie in [1, {t}] for {h}x{w} images and grid {grid}, got {p}")
    n = grid * grid
    tiles = x[:, :, : grid * t, : grid * t].reshape(b, c, grid, t, grid, t)
    tiles = tiles.permute(0, 2, 4, 1, 3, 5).reshape(b, n, c, t, t)
    if p < t:  # one random offset per tile: gather rows, then columns
        offsets = torch.randint(t - p + 1, (2, b, n), generator=generator,
                                device=generator.device if generator is not None else x.device).to(x.device)
        span = torch.arange(p, device=x.device)
        rows = (offsets[0, :, :, None] + span).view(b, n, 1, p, 1).expand(b, n, c, p, t)
        tiles = tiles.gather(3, rows)
        cols = (offsets[1, :, :, None] + span).view(b, n, 1, 1, p).expand(b, n, c, p, p)
        tiles = tiles.gather(4, cols)
    keys = torch.rand(b, n, generator=generator, device=generator.device if generator is not None else x.device)
    perm = keys.argsort(1).to(x.device)
    patches = tiles[torch.arange(b, device=x.device)[:, None], perm]
    return patches, perm


# ----------------------------------------------------------------------------- photometric


def rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB `[B, 3, H, W]` in [0, 1] -> HSV `[B, 3, H, W]`, hue in [0, 1)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2 + (b - r) / d, 4 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """HSV `[B, 3, H, W]` (hue in [0, 1)) -> RGB `[B, 3, H, W]` in [0, 1]."""
    h, s, v = x.unbind(1)
    # each channel n in (5, 3, 1) is v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = (n + 6 * h.unsqueeze(1)) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * ramp


def color_jitter(
    x: Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Jitter brightness, contrast, saturation and hue of each image with probability p: same shape out.

    Factors are drawn per image: brightness, contrast, saturation from U(1 - s, 1 + s), hue shift from
    U(-hue, hue) (a fraction of the colour wheel, hue <= 0.5). They are applied in that fixed order (torchvision
    shuffles the order per image), each clamped to [0, 1]. Saturation and hue leave grayscale (C = 1) images
    unchanged. Images not selected (probability 1 - p) pass through unchanged.
    """
    fn = "color_jitter"
    _check_images(fn, x)
    _check_prob(fn, "p", p)
    for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{fn}: {name} must lie in [0, 1], got {v}")
    if not 0.0 <= hue <= 0.5:
        raise ValueError(f"{fn}: hue must lie in [0, 0.5], got {hue}")
    b = len(x)
    on = _coin(b, p, x, generator).to(x.dtype)
    # unselected images get the identity factors (1, 1, 1, 0)
    fb, fc, fs = (_per_image(1 + on * _uniform(b, -s, s, x, generator)) for s in (brightness, contrast, saturation))
    shift = on * _uniform(b, -hue, hue, x, generator)
    out = (x * fb).clamp(0, 1)
    mean = _gray(out).mean((1, 2, 3), keepdim=True)
    out = ((out - mean) * fc + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(out)
        out = ((out - gray) * fs + gray).clamp(0, 1)
        if hue > 0:
            hsv = rgb_to_hsv(out)
            hsv = torch.cat([(hsv[:, :1] + _per_image(shift)) % 1.0, hsv[:, 1:]], 1)
            out = hsv_to_rgb(hsv).clamp(0, 1)
    return torch.where(_per_image(on.bool()), out, x)  # exact pass-through (no HSV round-off) when unselected


def random_grayscale(x: Tensor, p: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Replace each RGB image by its luma (in all 3 channels) with probability p; C = 1 passes through."""
    _check_images("random_grayscale", x)
    _check_prob("random_grayscale", "p", p)
    on = _per_image(_coin(len(x), p, x, generator))
    if x.shape[1] == 1:
        return x
    return torch.where(on, _gray(x).expand_as(x), x)


def gaussian_blur(
    x: Tensor,
    sigma: Sequence[float] = (0.1, 2.0),
    kernel_size: int | None = None,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Blur each image with probability p by a Gaussian of std U(sigma) pixels: same shape out.

    `kernel_size` (odd) defaults to about a tenth of the image side, as in SimCLR. The blur is separable and
    runs as two grouped convolutions over the whole batch (one kernel per image), reflect-padded.
    """
    fn = "gaussian_blur"
    _check_images(fn, x)
    _check_prob(fn, "p", p)
    s_lo, s_hi = _check_range(fn, "sigma", sigma)
    if s_lo <= 0:
        raise ValueError(f"{fn}: sigma must be positive, got {tuple(sigma)}")
    b, c, h, w = x.shape
    if kernel_size is None:
        kernel_size = max(3, (min(h, w) // 10) | 1)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{fn}: kernel_size must be a positive odd int, got {kernel_size}")
    on = _coin(b, p, x, generator)
    s = _uniform(b, s_lo, s_hi, x, generator)
    r = kernel_size // 2
    if r == 0 or r >= min(h, w):  # nothing to blur with, or reflect padding impossible
        return x
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * s[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)
    delta = (t == 0).to(x.dtype)
    k = torch.where(on[:, None], k, delta)  # unselected images: identity kernel
    k = k.repeat_interleave(c, 0)  # [B * C, K]: one kernel per (image, channel) group
    y = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def solarize(x: Tensor, threshold: float = 0.5, p: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Invert pixels >= threshold (x -> 1 - x) in each image with probability p: same shape out."""
    _check_images("solarize", x)
    _check_prob("solarize", "p", p)
    on = _per_image(_coin(len(x), p, x, generator))
    return torch.where(on & (x >= threshold), 1 - x, x)


# ----------------------------------------------------------------------------- pipelines


def _pair(name: str, v: float | Sequence[float]) -> tuple[float, float]:
    """A per-global-view setting: one value for both views or a pair (BYOL's asymmetric blur/solarise)."""
    if isinstance(v, (int, float)):
        return float(v), float(v)
    if len(v) != 2:
        raise ValueError(f"ImageViews: {name} must be a number or a pair (view 1, view 2), got {v!r}")
    return float(v[0]), float(v[1])


class ImageViews:
    """The augmentation pipeline: `views(x [B, C, H, W] in [0, 1]) -> list of V tensors`.

    Each view: random resized crop (+ horizontal flip) -> colour jitter -> random grayscale -> Gaussian blur ->
    solarisation, every parameter drawn per image. The first `num_global` views are `size` x `size` crops of
    `global_scale`; then `num_local` views of `local_size` (multi-crop, SwAV / DINO) of `local_scale`.
    `blur_p` and `solarize_p` may be pairs, one value per global view (BYOL: blur (1.0, 0.1), solarise (0, 0.2));
    a third global view onwards uses the second value, local views use `local_blur_p` and no solarisation.

    Args:
        size: global side (None: the input's height). jitter: (brightness, contrast, saturation, hue).
    """

    def __init__(
        self,
        size: int | None = None,
        global_scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float | Sequence[float] = 0.0,
        blur_sigma: Sequence[float] = (0.1, 2.0),
        solarize_p: float | Sequence[float] = 0.0,
        num_global: int = 2,
        num_local: int = 0,
        local_size: int | None = None,
        local_scale: Sequence[float] = (0.05, 0.4),
        local_blur_p: float = 0.5,
    ) -> None:
        if len(jitter) != 4:
            raise ValueError(f"ImageViews: jitter must be (brightness, contrast, saturation, hue), got {jitter!r}")
        if num_global < 1 or num_local < 0:
            raise ValueError(f"ImageViews: need num_global >= 1 and num_local >= 0, got {num_global}, {num_local}")
        if num_local and local_size is None and size is None:
            raise ValueError("ImageViews: num_local > 0 needs local_size (or size, of which it takes 3/7)")
        self.size, self.global_scale, self.ratio, self.flip_p = size, tuple(global_scale), tuple(ratio), flip_p
        self.jitter, self.jitter_p, self.gray_p = tuple(jitter), jitter_p, gray_p
        self.blur_p, self.blur_sigma, self.solarize_p = _pair("blur_p", blur_p), tuple(blur_sigma), _pair(
            "solarize_p", solarize_p)
        self.num_global, self.num_local = num_global, num_local
        # DINO's 96 / 224 local-to-global side ratio, rounded
        self.local_size = local_size if local_size is not None else (None if size is None else max(4, size * 3 // 7))
        self.local_scale, self.local_blur_p = tuple(local_scale), local_blur_p

    def __repr__(self) -> str:
        return f"ImageViews({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    @property
    def num_views(self) -> int:
        return self.num_global + self.num_local

    def view(self, x: Tensor, size: int, scale: Sequence[float], blur_p: float, solarize_p: float,
             generator: torch.Generator | None = None) -> Tensor:
        """One view of every image: `[B, C, H, W] -> [B, C, size, size]`."""
        y = random_resized_crop(x, size, scale, self.ratio, self.flip_p, generator)
        y = color_jitter(y, *self.jitter, p=self.jitter_p, generator=generator)
        y = random_grayscale(y, self.gray_p, generator)
        if blur_p > 0:
            y = gaussian_blur(y, self.blur_sigma, p=blur_p, generator=generator)
        if solarize_p > 0:
            y = solarize(y, p=solarize_p, generator=generator)
        return y

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        _check_images("ImageViews", x)
        with torch.autocast(x.device.type, enabled=False):  # pixel arithmetic in the images' own precision
            return self._views(x, generator)

    def _views(self, x: Tensor, generator: torch.Generator | None) -> list[Tensor]:
        size = self.size or x.shape[-2]
        out = [self.view(x, size, self.global_scale, self.blur_p[min(i, 1)], self.solarize_p[min(i, 1)], generator)
               for i in range(self.num_global)]
        local = self.local_size or max(4, size * 3 // 7)
        out += [self.view(x, local, self.local_scale, self.local_blur_p, 0.0, generator) for _ in range(self.num_local)]
        return out
