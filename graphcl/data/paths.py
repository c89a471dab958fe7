"""Where raw data is read from and where processed files are written.

Data roots may be read-only, so loaders never run on them directly: each dataset folder gets a writable
"shadow" in the cache, `<cache>/datasets/<hash>/<Folder>/`, holding symlinks to the raw entries (`raw/`,
and for OGB also `split/`, `mapping/`, `RELEASE_v1.txt`). The standard loaders read the raw files through
the links and write `processed/` next to them, in the cache.
"""
import hashlib
import os
from pathlib import Path

__all__ = ["resolve_root", "cache_dir", "shadow_folder"]


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root, absolute: `root` (config `data.root`), else `$GRAPHCL_DATA`, else `./datasets`."""
    return Path(root or os.environ.get("GRAPHCL_DATA") or "datasets").expanduser().absolute()


def cache_dir() -> Path:
    """The writable cache, `$GRAPHCL_CACHE` else `~/.cache/graphcl`, created on demand."""
    path = Path(os.environ.get("GRAPHCL_CACHE") or Path.home() / ".cache" / "graphcl").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def shadow_folder(root: Path, folder: str) -> Path:
    """A writable mirror of `root/folder` in the cache: links to all its entries but `processed/`."""
    source = root.resolve() / folder
    shadow = cache_dir() / "datasets" / _fingerprint(source) / folder
    shadow.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        link = shadow / entry.name
        # A processed/ beside the raw files is never used: the loader might rewrite it in place.
        if entry.name != "processed" and not os.path.lexists(link):
            try:
                link.symlink_to(entry, target_is_directory=entry.is_dir())
            except FileExistsError:  # another process linked it first
                pass
    return shadow


def _fingerprint(source: Path) -> str:
    """A short hash of the folder's path and of its files' paths, sizes and mtimes, `processed/` excluded.

    Two roots never share processed files, and replacing a raw file (a truncated one, say) reprocesses.
    """
    stamps = [str(source)]
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0] != "processed" and path.is_file():
            stat = path.stat()
            stamps.append(f"{relative} {stat.st_size} {stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:12]
