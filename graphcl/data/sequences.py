"""Readers for the sequence datasets: UCR/UEA `.ts` files, the Free Spoken Digit Dataset (WAV) and ETT CSV.

Everything comes back as padded float32 tensors `x [N, C, L]` with a boolean `mask [N, L]` (True = a real
step; sequences are right-padded with zeros) and integer labels, so that batching is a slice. Roots resolve as
for every dataset (`data.root` -> `$GRAPHCL_DATA` -> `./datasets`); the files live under
`<root>/sequences/{UCR,UEA,FSDD,ETT}` (a root that already is the `sequences` folder works too).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tarfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from graphcl.data.paths import cache_dir, resolve_root

__all__ = [
    "SequenceSet", "read_ts", "encode_labels", "pad_sequences", "load_ucr_uea", "load_fsdd", "load_ett",
    "standardize", "sequence_root", "ETT_SPLITS", "UCR_UEA", "find_ucr_uea",
]

#: Informer/TS2Vec split of the hourly ETT series: 12 / 4 / 4 months of 30 days.
ETT_SPLITS = {"train": (0, 8640), "val": (8640, 11520), "test": (11520, 14400)}
UCR_UEA = ("UCR", "UEA")


@dataclass
class SequenceSet:
    """A padded set of sequences: `x [N, C, L]` float32 (zeros after each sequence's end), `mask [N, L]` bool,
    `y [N]` long class indices and `extra` further integer labels by name (e.g. FSDD's `speaker`)."""

    x: Tensor
    mask: Tensor
    y: Tensor
    classes: list[str] = field(default_factory=list)
    extra: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def lengths(self) -> Tensor:
        return self.mask.sum(1)


def sequence_root(root: str | os.PathLike | None = None) -> Path:
    """`<root>/sequences`, or `root` itself when it already holds the UCR/UEA/FSDD/ETT folders."""
    base = resolve_root(root)
    return base if any((base / d).is_dir() for d in ("UCR", "UEA", "FSDD", "ETT")) else base / "sequences"


# ----------------------------------------------------------------------------- .ts (UCR / UEA)


def _bool(value: str, path: Path, lineno: int) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{path}:{lineno}: expected true/false, got {value!r}")
    return value.lower() == "true"


def read_ts(path: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """One `.ts` file -> (series, labels): series[i] is a float32 array `[C, L_i]`, labels[i] its class string.

    Header lines (`@name value`) and `#` comments come before `@data`; each data line holds the channels
    separated by `:` (values by `,`) and, with `@classLabel true`, the label as the last field. `?` is a
    missing value (NaN). Files with `@timeStamps true` are refused.
    """
    path = Path(path)
    series, labels = [], []
    has_labels, dims, in_data = True, None, False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{path}:{lineno}: expected a '@' header line before '@data', got {line[:40]!r}")
                key, _, value = line[1:].partition(" ")
                key, value = key.lower(), value.strip()
                if key == "data":
                    in_data = True
                elif key == "timestamps" and _bool(value, path, lineno):
                    raise ValueError(f"{path}:{lineno}: @timeStamps true is not supported")
                elif key == "classlabel":
                    has_labels = _bool(value.split()[0] if value else "", path, lineno)
                elif key == "dimensions":
                    dims = int(value)
                continue
            fields = line.split(":")
            if has_labels:
                if len(fields) < 2:
                    raise ValueError(f"{path}:{lineno}: expected channels and a class label separated by ':'")
                labels.append(fields.pop().strip())
            if dims is not None and len(fields) != dims:
                raise ValueError(f"{path}:{lineno}: expected {dims} channels (@dimensions), got {len(fields)}")
            try:
                channels = [np.array([float("nan") if v.strip() == "?" else float(v) for v in ch.split(",")],
                                     dtype=np.float32) for ch in fields]
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: bad value ({e})") from None
            if len({len(c) for c in channels}) != 1:
                lens = [len(c) for c in channels]
                raise ValueError(f"{path}:{lineno}: channels have different lengths {lens}")
            series.append(np.stack(channels))
            dims = dims or len(fields)
    if not in_data:
        raise ValueError(f"{path}: no '@data' line")
    if not series:
        raise ValueError(f"{path}: no data lines after '@data'")
    return series, labels


def _label_key(label: str) -> tuple:
    """Numeric labels sort as numbers ("2.0" before "10.0"), others as strings."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def encode_labels(train: Sequence[str], *others: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    """Map class strings to 0..K-1 in sorted order of the train labels (numerically when they are numbers).

    Returns (classes, [codes of train, codes of each of `others`]); a label absent from train is an error.
    """
    classes = sorted(set(train), key=_label_key)
    index = {c: i for i, c in enumerate(classes)}
    codes = []
    for part, labels in enumerate((train, *others)):
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"encode_labels: labels {unknown[:5]} of split {part} do not occur in the train split")
        codes.append(np.array([index[s] for s in labels], dtype=np.int64))
    return classes, codes


def pad_sequences(series: Sequence[np.ndarray], length: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Right-pad arrays `[C, L_i]` with zeros to `length` (default the longest) -> (x `[N, C, L]`, mask `[N, L]`).

    Missing values (NaN) inside a series are set to 0 and kept in the mask (the archives here have none).
    """
    if not series:
        raise ValueError("pad_sequences: no sequences")
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise ValueError(f"pad_sequences: sequences have different channel counts {sorted(channels)}")
    lengths = np.array([s.shape[1] for s in series])
    length = int(length or lengths.max())
    x = np.zeros((len(series), channels.pop(), length), dtype=np.float32)
    for i, s in enumerate(series):  # a copy per sequence at load time, not on a training path
        x[i, :, : min(s.shape[1], length)] = s[:, :length]
    mask = np.arange(length)[None, :] < np.minimum(lengths, length)[:, None]
    return torch.from_numpy(np.nan_to_num(x)), torch.from_numpy(mask)


def find_ucr_uea(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder `<root>/sequences/{UCR,UEA}/<Name>` of `name` (matched case-insensitively)."""
    base = sequence_root(root)
    for archive in UCR_UEA:
        folder = base / archive
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.lower() == name.lower() and entry.is_dir():
                    return entry
    raise FileNotFoundError(f"dataset {name!r} not found: expected {base}/UCR/{name}/{name}_TRAIN.ts and "
                            f"{name}_TEST.ts (or the same under {base}/UEA)")


def load_ucr_uea(name: str, root: str | os.PathLike | None = None) -> tuple[SequenceSet, SequenceSet]:
    """(train, test) of a UCR/UEA dataset on its official split, padded to the longest train/test series."""
    folder = find_ucr_uea(name, root)
    files = [folder / f"{folder.name}_{part}.ts" for part in ("TRAIN", "TEST")]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"missing file {f} (expected {files[0].name} and {files[1].name} in {folder})")
    (s_tr, l_tr), (s_te, l_te) = read_ts(files[0]), read_ts(files[1])
    classes, (y_tr, y_te) = encode_labels(l_tr, l_te)
    length = max(s.shape[1] for s in s_tr + s_te)
    sets = []
    for s, y in ((s_tr, y_tr), (s_te, y_te)):
        x, mask = pad_sequences(s, length)
        sets.append(SequenceSet(x, mask, torch.from_numpy(y), classes))
    return sets[0], sets[1]


# ----------------------------------------------------------------------------- FSDD (8 kHz WAV)

_FSDD_NAME = re.compile(r"(?:.*/)?(\d)_([a-z]+)_(\d+)\.wav$")


def _read_wav(data: bytes, name: str) -> np.ndarray:
    """16-bit mono PCM WAV bytes -> float32 samples in [-1, 1)."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{name}: expected 16-bit mono PCM, got {8 * w.getsampwidth()}-bit, "
                             f"{w.getnchannels()} channels")
        if w.getframerate() != 8000:
            raise ValueError(f"{name}: expected 8000 Hz, got {w.getframerate()} Hz")
        frames = w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def _fsdd_clips(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file name, samples) of every recording, from the tar.gz (member by member) or a folder of WAVs."""
    wavs = sorted(folder.rglob("*.wav"))
    if wavs:
        return [(p.name, _read_wav(p.read_bytes(), str(p))) for p in wavs]
    archives = sorted(folder.glob("*.tar.gz"))
    if not archives:
        raise FileNotFoundError(f"FSDD not found: expected {folder}/fsdd_recordings_*.tar.gz or WAV files "
                                f"<digit>_<speaker>_<index>.wav under {folder}")
    clips = []
    with tarfile.open(archives[0], "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".wav"):
                clips.append((member.name, _read_wav(tar.extractfile(member).read(), f"{archives[0]}:{member.name}")))
    return clips


def load_fsdd(root: str | os.PathLike | None = None, max_length: Optional[int] = None) -> tuple[SequenceSet, SequenceSet]:
    """(train, test) of the Free Spoken Digit Dataset: `x [N, 1, L]` raw 8 kHz audio, `y` the digit, `extra["speaker"]`
    the speaker (sorted names; see `classes` / `extra_classes`). Official split: recording index 0-4 test, 5-49 train.

    The decoded arrays are cached as a `.pt` in `$GRAPHCL_CACHE` (decoding 3,000 WAVs from the tar takes seconds).
    """
    folder = sequence_root(root) / "FSDD"
    if not folder.is_dir():
        raise FileNotFoundError(f"FSDD not found: expected {folder}/fsdd_recordings_*.tar.gz")
    stamp = "-".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()))
    cache = cache_dir() / "sequences" / f"fsdd-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}-{max_length}.pt"
    if cache.is_file():
        return tuple(SequenceSet(**d) for d in torch.load(cache, weights_only=False))  # type: ignore[return-value]
    clips = _fsdd_clips(folder)
    parsed = []
    for name, samples in clips:
        m = _FSDD_NAME.match(name)
        if m is None:
            raise ValueError(f"{folder}: FSDD file {name!r} is not named <digit>_<speaker>_<index>.wav")
        parsed.append((int(m.group(1)), m.group(2), int(m.group(3)), samples))
    speakers = sorted({p[1] for p in parsed})
    sets = []
    for is_test in (False, True):
        part = [p for p in parsed if (p[2] < 5) == is_test]
        x, mask = pad_sequences([p[3][None, :] for p in part], max_length)
        sets.append(SequenceSet(x, mask, torch.tensor([p[0] for p in part]), [str(d) for d in range(10)],
                                {"speaker": torch.tensor([speakers.index(p[1]) for p in part])}))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    torch.save([s.__dict__ for s in sets], tmp)
    os.replace(tmp, cache)
    return sets[0], sets[1]


def fsdd_speakers(root: str | os.PathLike | None = None) -> list[str]:
    """Speaker names in the order of `extra["speaker"]` (from `speakers.json`)."""
    return sorted(json.loads((sequence_root(root) / "FSDD" / "speakers.json").read_text()))


# ----------------------------------------------------------------------------- ETT (CSV)


def load_ett(name: str, root: str | os.PathLike | None = None) -> tuple[Tensor, list[str]]:
    """An ETT series (`etth1`, `etth2`, case-insensitive) -> (values `[T, 7]` float32, column names); the date
    column is dropped. Columns: HUFL, HULL, MUFL, MULL, LUFL, LULL, OT (the forecasting target)."""
    folder = sequence_root(root) / "ETT"
    path = next((p for p in folder.glob("*.csv") if p.stem.lower() == name.lower()), folder / f"{name}.csv")
    if not path.is_file():
        raise FileNotFoundError(f"ETT series {name!r} not found: expected {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    try:
        values = np.array([[float(v) for v in r[1:]] for r in body], dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{path}: non-numeric value ({e})") from None
    if values.ndim != 2 or values.shape[1] != len(header) - 1:
        raise ValueError(f"{path}: rows do not all have {len(header)} columns")
    return torch.from_numpy(values), header[1:]


# ----------------------------------------------------------------------------- standardisation


def standardize(train: SequenceSet, *others: SequenceSet, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Standardise every set per channel IN PLACE with the mean / std of the train set's real steps only.

    Padded steps stay 0. Returns (mean `[C]`, std `[C]`).
    """
    m = train.mask[:, None, :].to(train.x.dtype)
    count = m.sum((0, 2))
    mean = (train.x * m).sum((0, 2)) / count
    std = (((train.x - mean[None, :, None]) ** 2 * m).sum((0, 2)) / count).sqrt().clamp_min(eps)
    for s in (train, *others):
        s.x = (s.x - mean[None, :, None]) / std[None, :, None] * s.mask[:, None, :]
    return mean, std
