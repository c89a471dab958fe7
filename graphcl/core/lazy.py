"""Lazy registries: names map to "package.module:Name" strings, imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any


def resolve(path: str) -> Any:
    """The object a lazy "package.module:Name" string names."""
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)
