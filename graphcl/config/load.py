"""Build a run's config: a YAML file and dotted overrides merged onto the `RunConfig` schema, validated.

Every problem surfaces as a one-line `ConfigError` that names the offending file, key or value; the CLI
maps it to exit status 2. OmegaConf does the merging and the scalar type conversion; this module adds
what it reports poorly (unknown keys with a hint, containers in the wrong place) and what types cannot
express (choices and ranges).
"""
from __future__ import annotations

import dataclasses
import difflib
import io
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Union, get_args, get_origin, get_type_hints

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from .schema import CHOICES, RunConfig

__all__ = ["ConfigError", "config_from_dict", "load_config", "save_config", "to_yaml"]

_KEY = re.compile(r"\w+(\.\w+)*")  # an override's key: dotted names (no list indexing)


class ConfigError(ValueError):
    """A bad config file, override or value; the message is one line naming the culprit."""


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> DictConfig:
    """Merge the YAML file at `path` (None: defaults only), then `key=value` overrides, onto the schema.

    Returns a validated, fully resolved, struct-mode DictConfig with no missing values.
    """
    layers = [] if path is None else [_read_yaml(os.fspath(path))]
    layers += [_parse_override(item) for item in overrides]
    return _build(layers)


def config_from_dict(d: Mapping) -> DictConfig:
    """Validate a plain mapping (e.g. a run's saved config.yaml) exactly as `load_config` does."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"a config must be a mapping, got {type(d).__name__}")
    return _build([d])


def with_seeds(cfg: DictConfig, seeds: Sequence[int]) -> DictConfig:
    """`cfg` with its seeds replaced by `seeds` (validated as any config's)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data["seeds"] = list(seeds)
    return config_from_dict(data)


def to_yaml(cfg: DictConfig) -> str:
    """The config as YAML, interpolations resolved."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def save_config(cfg: DictConfig, path: str | os.PathLike) -> None:
    """Write `to_yaml(cfg)` to `path` atomically: readers see the old file or the new one, never half."""
    path = Path(path)
    # Same directory, so os.replace is a rename within one file system.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(to_yaml(cfg))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left behind when writing failed


def _read_yaml(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file '{path}': {getattr(e, 'strerror', None) or e}") from None
    try:
        # Composing tells the document's shape; OmegaConf's loader then builds the values in its
        # YAML dialect (1e-3 is a float, a duplicate key is an error).
        top = yaml.compose(text, Loader=yaml.SafeLoader)
        if top is not None and not isinstance(top, yaml.MappingNode):
            raise ConfigError(f"config file '{path}' must hold a mapping of sections at the top level")
        cfg = OmegaConf.load(io.StringIO(text))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"malformed YAML in '{path}'{where}: {_reason(e)}") from None
    except (yaml.YAMLError, OmegaConfBaseException) as e:
        raise ConfigError(f"malformed YAML in '{path}': {_reason(e)}") from None
    return OmegaConf.to_container(cfg)


def _parse_override(item: str) -> dict:
    key, sep, _ = item.partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(f"malformed override '{item}' (expected key=value)")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([item]))
    except (yaml.YAMLError, OmegaConfBaseException) as e:
        raise ConfigError(f"malformed value in override '{item}': {_reason(e)}") from None


def _build(layers: Sequence[Mapping]) -> DictConfig:
    for layer in layers:
        _check_shape(layer, RunConfig, "")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), *layers)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            s = "s" if len(missing) > 1 else ""
            raise ConfigError(f"missing required key{s} " + ", ".join(f"'{k}'" for k in missing))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise _translate(e) from None
    OmegaConf.set_struct(cfg, True)
    _check_values(cfg)
    return cfg


def _check_shape(value: Any, tp: Any, key: str) -> None:
    """Reject unknown keys, nulls and containers where the schema has none.

    OmegaConf reports these poorly (an unknown key without a hint, a list given for a section as a
    TypeError); scalar conversion ("10" -> 10, "ten" -> error) is left to it.
    """
    optional, inner = _unwrap_optional(tp)
    if value is None:
        if not optional:
            raise _type_error(key, tp, value)
    elif dataclasses.is_dataclass(inner):
        if not isinstance(value, Mapping):
            raise _type_error(key, tp, value)
        fields = get_type_hints(inner)
        for name, sub in value.items():
            if name not in fields:
                raise _unknown_key(key, str(name))
            _check_shape(sub, fields[name], _join(key, name))
    elif get_origin(inner) is dict:  # free-form (model.params): the method checks it
        if not isinstance(value, Mapping):
            raise _type_error(key, tp, value)
    elif get_origin(inner) is list:
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, tp, value)
        for i, item in enumerate(value):
            _check_shape(item, get_args(inner)[0], f"{key}[{i}]")
    elif isinstance(value, (Mapping, list, tuple)):
        raise _type_error(key, tp, value)


def _check_values(cfg: DictConfig) -> None:
    """Choices and ranges, which types alone cannot express."""
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            close = difflib.get_close_matches(str(value).lower(), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"key '{key}' must be one of {', '.join(allowed)}; got {value!r}{hint}")

    for key in ("data.batch_size", "model.encoder.hidden_channels", "model.encoder.num_layers",
                "trainer.epochs", "trainer.checkpoint_every", "eval.repeats", "eval.max_iter",
                "eval.inference_batch_size"):
        _require(cfg, key, lambda v: v >= 1, ">= 1")
    for key in ("model.encoder.out_channels", "model.heads.projector_hidden",
                "model.heads.projector_out", "model.heads.predictor_hidden", "trainer.patience"):
        _require(cfg, key, lambda v: v is None or v >= 1, ">= 1 or null")
    _require(cfg, "model.encoder.dropout", lambda v: 0 <= v < 1, "in [0, 1)")
    _require(cfg, "optim.lr", lambda v: v > 0, "> 0")
    _require(cfg, "optim.weight_decay", lambda v: v >= 0, ">= 0")
    _require(cfg, "optim.warmup_epochs", lambda v: v >= 0, ">= 0")
    if cfg.optim.warmup_epochs and cfg.optim.scheduler != "cosine":
        raise ConfigError("key 'optim.warmup_epochs' needs optim.scheduler=cosine (it warms up the cosine decay), "
                          f"got scheduler {cfg.optim.scheduler!r}")
    if cfg.model.encoder.norm_last and cfg.model.encoder.norm is None:
        raise ConfigError("key 'model.encoder.norm_last' needs a norm: set model.encoder.norm (e.g. batch_norm)")
    _require(cfg, "eval.train_ratio", lambda v: 0 < v < 1, "in (0, 1)")
    _require(cfg, "eval.val_ratio", lambda v: 0 < v < 1, "in (0, 1)")
    if cfg.eval.train_ratio + cfg.eval.val_ratio >= 1:
        raise ConfigError("keys 'eval.train_ratio' + 'eval.val_ratio' must be < 1 (the rest is the test "
                          f"split), got {cfg.eval.train_ratio} + {cfg.eval.val_ratio}")
    _require(cfg, "eval.folds", lambda v: v >= 2, ">= 2")
    _require(cfg, "eval.jobs", lambda v: v >= 1 or v == -1, ">= 1 or -1 (one per core)")
    _require(cfg, "trainer.diagnostics_every", lambda v: v >= 0, ">= 0")
    _require(cfg, "trainer.collapse_std", lambda v: v > 0, "> 0")
    _require(cfg, "eval.c_grid", lambda v: len(v) > 0 and min(v) > 0, "a non-empty list of values > 0")
    _require(cfg, "seeds", lambda v: len(v) > 0 and len(set(v)) == len(v), "a non-empty list of unique ints")
    # -1 is PyG's "all neighbours" for a hop.
    _require(cfg, "data.num_neighbors", lambda v: len(v) > 0 and all(n >= 1 or n == -1 for n in v),
             "a non-empty list of values >= 1 or -1")


def _require(cfg: DictConfig, key: str, ok: Callable[[Any], bool], what: str) -> None:
    value = OmegaConf.select(cfg, key)
    if not ok(value):
        raise ConfigError(f"key '{key}' must be {what}, got {value!r}")


def _translate(e: OmegaConfBaseException) -> ConfigError:
    """OmegaConf's exception as a one-line ConfigError naming the key."""
    key = getattr(e, "full_key", None) or ""
    if isinstance(e, MissingMandatoryValue):
        return ConfigError(f"missing required key '{key}'")
    if isinstance(e, InterpolationResolutionError):
        return ConfigError(f"cannot resolve key '{key}': {_first_line(e)}")
    if isinstance(e, ConfigKeyError) and key:
        parent, _, name = key.rpartition(".")
        return _unknown_key(parent, name)
    try:  # a value OmegaConf could not convert to the field's type
        return _type_error(key, _type_at(key), e.value)
    except (AttributeError, KeyError, TypeError):
        return ConfigError(f"invalid config at key '{key}': {_first_line(e)}")


def _unknown_key(parent: str, name: str) -> ConfigError:
    siblings = get_type_hints(_unwrap_optional(_type_at(parent))[1])
    close = difflib.get_close_matches(name, siblings, n=1)
    hint = f" (did you mean '{_join(parent, close[0])}'?)" if close else ""
    return ConfigError(f"unknown key '{_join(parent, name)}'{hint}")


def _type_error(key: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"key '{key}' expects {_describe(tp)}, got {value!r}")


def _type_at(key: str) -> Any:
    """The schema type at a dotted key such as 'trainer.epochs' or 'seeds[1]' ('' is the root)."""
    tp: Any = RunConfig
    for part in re.findall(r"[^.\[\]]+", key):
        tp = _unwrap_optional(tp)[1]
        tp = get_args(tp)[-1] if get_origin(tp) in (list, dict) else get_type_hints(tp)[part]
    return tp


def _describe(tp: Any) -> str:
    optional, tp = _unwrap_optional(tp)
    if get_origin(tp) is list:
        name = f"list of {_describe(get_args(tp)[0])}"
    elif get_origin(tp) is dict or dataclasses.is_dataclass(tp):
        name = "mapping"
    else:
        name = getattr(tp, "__name__", str(tp))
    return f"{name} or null" if optional else name


def _unwrap_optional(tp: Any) -> tuple[bool, Any]:
    """(is Optional, the type inside)."""
    args = get_args(tp)
    if get_origin(tp) is Union and type(None) in args:
        return True, next(a for a in args if a is not type(None))
    return False, tp


def _join(parent: str, name: Any) -> str:
    return f"{parent}.{name}" if parent else str(name)


def _reason(e: BaseException) -> str:
    """The gist of an error: a YAML error's problem, else the first line of its message."""
    return getattr(e, "problem", None) or _first_line(e)


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
