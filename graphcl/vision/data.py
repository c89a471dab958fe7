"""Image datasets read straight from their published files: MNIST / Fashion-MNIST (gzipped IDX, numpy),
CIFAR-10 (the JPEG archive of `shared/datasets/images`, Pillow, member by member) and scikit-learn's bundled
8 x 8 `digits` (always available, for examples and tests).

`load_images(name, root)` returns an `ImageData`: uint8 images `[N, C, H, W]` and int64 labels `[N]` for the
published train and test splits, plus the train set's per-channel mean / std (in [0, 1] units).
Files are looked up under `<root>/images/<Folder>/` and `<root>/<Folder>/`; root resolves as everywhere in
graphcl (`data.root` -> `$GRAPHCL_DATA` -> `./datasets`). Decoded CIFAR-10 arrays are cached in `$GRAPHCL_CACHE`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graphcl.data.paths import cache_dir, resolve_root
from graphcl.data.registry import DatasetNotFoundError

__all__ = ["ImageData", "IMAGE_DATASETS", "load_images", "read_idx", "image_dataset_name"]


@dataclass
class ImageData:
    """Published train / test splits: x uint8 `[N, C, H, W]`, y int64 `[N]`."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) != len(y) or len(x) == 0:
                raise ValueError(f"ImageData: {split}_x must be [N, C, H, W] (C in 1, 3) with one label each, "
                                 f"got {tuple(x.shape)} and labels {tuple(y.shape)}")

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-2]

    def stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the train images, pixels scaled to [0, 1]."""
        x = self.train_x.double().div_(255).transpose(0, 1).reshape(self.channels, -1)
        return x.mean(1).tolist(), x.std(1).clamp_min(1e-3).tolist()


# ----------------------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (LeCun's format; `.gz` is decompressed) as a numpy array of its stated shape."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", ndim, offset=4).astype(np.int64)
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {tuple(dims)} ({expected} bytes) but the file has "
                         f"{len(raw)} bytes (truncated?)")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(tuple(dims))


_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(root: Path, folder: str, files: list[str]) -> Path:
    """The first of `root/images/folder`, `root/folder` that holds every file (plain or .gz)."""
    candidates = [root / "images" / folder, root / folder]
    for base in candidates:
        if all((base / f).exists() or (base / f"{f}.gz").exists() for f in files):
            return base
    raise DatasetNotFoundError(
        f"dataset files not found: expected {', '.join(files)} (or .gz) in {candidates[0]} or {candidates[1]}; "
        f"set data.root or $GRAPHCL_DATA to the folder that holds images/ (nothing is downloaded)")


def _idx_split(base: Path, name: str) -> np.ndarray:
    path = base / name
    return read_idx(path if path.exists() else base / f"{name}.gz")


def _load_idx_dataset(name: str, folder: str, root: Path, classes: list[str]) -> ImageData:
    base = _find(root, f"{folder}/raw", [f for pair in _IDX_FILES.values() for f in pair])
    arrays = {}
    for split, (images, labels) in _IDX_FILES.items():
        x, y = _idx_split(base, images), _idx_split(base, labels)
        if x.ndim != 3 or len(x) != len(y):
            raise ValueError(f"{base}: {images} has shape {x.shape} but {labels} has {len(y)} labels")
        arrays[split] = (torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
    return ImageData(name, *arrays["train"], *arrays["test"], classes=classes)


# ----------------------------------------------------------------------------- CIFAR-10 (JPEG archive)

CIFAR10_ARCHIVE = "CIFAR10-jpg/cifar10_jpg_q75.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _decode_cifar_archive(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`cifar10_jpg/{train,test}/<class>/<n>.jpg` members -> per split uint8 `[N, 32, 32, 3]` and labels,
    in (class, file name) order."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading the CIFAR-10 JPEG archive needs Pillow: pip install Pillow") from None
    items: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-3] not in items or not parts[-1].endswith(".jpg"):
                continue
            if parts[-2] not in CIFAR10_CLASSES:
                raise ValueError(f"{path}: unexpected class folder {parts[-2]!r} in member {member.name}")
            data = tar.extractfile(member).read()
            image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            items[parts[-3]].append((CIFAR10_CLASSES.index(parts[-2]), parts[-1], image))
    out = {}
    for split, rows in items.items():
        if not rows:
            raise ValueError(f"{path}: no {split} images found (expected cifar10_jpg/{split}/<class>/<n>.jpg)")
        rows.sort(key=lambda r: (r[0], r[1]))
        out[split] = (np.stack([r[2] for r in rows]), np.array([r[0] for r in rows], dtype=np.int64))
    return out


def _load_cifar10(root: Path) -> ImageData:
    base = _find(root, "CIFAR10-jpg", ["cifar10_jpg_q75.tar.gz"])
    path = base / "cifar10_jpg_q75.tar.gz"
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}".encode()).hexdigest()[:12]
    cache = cache_dir() / "images" / f"cifar10-{key}.npz"
    if cache.exists():
        with np.load(cache) as z:
            arrays = {s: (z[f"{s}_x"], z[f"{s}_y"]) for s in ("train", "test")}
    else:
        arrays = _decode_cifar_archive(path)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{f"{s}_{k}": v for s, (x, y) in arrays.items() for k, v in (("x", x), ("y", y))})
        os.replace(tmp, cache)  # atomic: a concurrent reader never sees half a file

    def split(s: str) -> tuple[Tensor, Tensor]:
        x, y = arrays[s]
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)

    return ImageData("CIFAR10", *split("train"), *split("test"), classes=list(CIFAR10_CLASSES))


# ----------------------------------------------------------------------------- digits (scikit-learn)


def _load_digits(root: Path) -> ImageData:
    """scikit-learn's 1797 8 x 8 digits (pixel values 0..16, rescaled to 0..255). It has no published split:
    the first 1347 images train, the last 450 test (scikit-learn's examples' `shuffle=False` 75 / 25 split)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    return ImageData("digits", x[:1347], y[:1347], x[1347:], y[1347:], classes=[str(i) for i in range(10)])


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
IMAGE_DATASETS = {
    "mnist": lambda root: _load_idx_dataset("MNIST", "MNIST", root, [str(i) for i in range(10)]),
    "fashion_mnist": lambda root: _load_idx_dataset("FashionMNIST", "FashionMNIST", root, FASHION_CLASSES),
    "cifar10": _load_cifar10,
    "digits": _load_digits,
}


def image_dataset_name(name: str) -> str:
    """The registry key of `name`, matched case-insensitively ignoring '-', '_' and spaces."""
    squash = {k.replace("_", ""): k for k in IMAGE_DATASETS}
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in squash:
        raise ValueError(f"unknown image dataset {name!r}; choose one of {', '.join(IMAGE_DATASETS)}")
    return squash[key]


def load_images(name: str, root: str | os.PathLike | None = None) -> ImageData:
    """The published train / test splits of image dataset `name` (see the module docstring)."""
    return IMAGE_DATASETS[image_dataset_name(name)](resolve_root(root))
