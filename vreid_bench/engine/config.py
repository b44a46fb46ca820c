"""Training configuration: one dataclass, read from YAML and ``--set key=value`` overrides.

Defaults are TF-CLIP's second-stage solver (Adam at 5e-6, weight decay 1e-4, biases at 2× lr, 10 warm-up epochs
from 0.1×, ×0.1 at epochs 30/50/70 of 80), which CG-CLIP follows. Two keys hold mappings: ``model`` (overrides
passed to the model's constructor, ``model.<key>=...``) and ``protocol`` (changed fields of the evaluation
protocol, ``protocol.<key>=...``; a changed protocol gets its own hash, so its results never mix with the preset's).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vreid_bench.errors import ConfigError
from vreid_bench.protocol import Protocol

# Fields that change how fast a run goes or what it prints, not what it computes; left out of the run's hash.
RUNTIME_FIELDS = ("workers", "eval_every", "eval_batch_size", "device", "keep_checkpoint")
MAPPING_FIELDS = ("model", "protocol")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}
_YAML_NULL = {"null", "~"}


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 80
    # Backbone weights: None for the model's usual ones (OpenAI CLIP, ImageNet), an open_clip tag, a local
    # file, or "none" for random initialisation.
    pretrained: str | None = None
    lr: float = 5e-6
    weight_decay: float = 1e-4
    bias_lr_factor: float = 2.0
    scheduler: Literal["step", "cosine"] = "step"
    milestones: tuple[int, ...] = (30, 50, 70)
    gamma: float = 0.1
    warmup_epochs: int = 10
    warmup_factor: float = 0.1
    grad_clip: float | None = None  # max gradient norm; None leaves gradients as they are
    amp: Literal["bf16", "fp16", "off"] = "bf16"  # autocast dtype on CUDA; CPU always runs float32
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP, so BN sees the global batch
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))  # data-loader processes
    eval_every: int = 0  # evaluate every N epochs as well as at the end; 0: only at the end
    eval_batch_size: int = 32  # clips per forward pass when extracting features
    device: Literal["auto", "cpu", "cuda"] = "auto"
    keep_checkpoint: bool = False  # keep the resumable checkpoint (optimizer state: twice the model) at the end
    model: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "eval_batch_size": self.eval_batch_size}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        nonnegative = {"lr": self.lr, "weight_decay": self.weight_decay, "warmup_epochs": self.warmup_epochs,
                       "workers": self.workers, "eval_every": self.eval_every}
        for key, value in nonnegative.items():
            if value < 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip must be > 0 or none, got {self.grad_clip}")
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"milestones must be increasing, got {list(self.milestones)}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["milestones"] = list(self.milestones)
        return data

    def identity(self) -> dict[str, Any]:
        """The settings that decide the result (everything but :data:`RUNTIME_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}


def valid_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    return ConfigError(f"unknown {where} key {key!r}: valid keys are {', '.join(valid)}")


def _parse_scalar(text: str) -> Any:
    """A ``--set`` value without a declared type (model and protocol keys): YAML's reading of it."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` (a string from ``--set`` or a YAML value) as the type ``hint`` declares."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        # Optional strings keep "none" (pretrained=none means random weights); only YAML's null is None.
        nulls = _YAML_NULL if inner == [str] else _NONE
        if value is None or (isinstance(value, str) and value.strip().lower() in nulls):
            return None
        return coerce(key, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        return _coerce_tuple(key, value, args[0])
    if hint is bool:
        return _coerce_bool(key, value)
    if hint in (int, float):
        return _coerce_number(key, value, hint)
    if hint is str:
        return str(value)
    return value


def _coerce_tuple(key: str, value: Any, item: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        parts = [p for p in value.strip().strip("[]()").split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    return tuple(coerce(key, p.strip() if isinstance(p, str) else p, item) for p in parts)


def _coerce_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _coerce_number(key: str, value: Any, hint: type) -> int | float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if hint is float:
        return number
    if not number.is_integer():
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return int(number)


def config_from_dict(data: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: the defaults) with the keys of ``data`` replaced; unknown keys are rejected."""
    hints = _field_types()
    values = (base or TrainConfig()).to_dict()
    for key, value in data.items():
        if key not in hints:
            raise _unknown_key(key, valid_keys(), "config")
        if key in MAPPING_FIELDS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a mapping of {key} settings, got {value!r}")
            values[key] = {**values[key], **value}
        else:
            values[key] = coerce(key, value, hints[key])
    values["milestones"] = tuple(values["milestones"])
    return TrainConfig(**values)


def load_config(path: str | Path | None = None, sets: list[str] | tuple[str, ...] = (),
                base: TrainConfig | None = None) -> TrainConfig:
    """Defaults, then the YAML file at ``path``, then each ``key=value`` of ``sets`` in order."""
    config = base or TrainConfig()
    if path is not None:
        config = config_from_dict(_read_yaml(Path(path)), config)
    return apply_sets(config, sets)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; give the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise ConfigError(f"{path} is not valid YAML ({problem}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def apply_sets(config: TrainConfig, sets: list[str] | tuple[str, ...]) -> TrainConfig:
    """Apply ``key=value`` strings; ``model.<key>`` and ``protocol.<key>`` go to those mappings."""
    updates: dict[str, Any] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set takes key=value, got {item!r} (for example --set lr=1e-5)")
        head, dot, sub = key.partition(".")
        if dot and head in MAPPING_FIELDS:
            if not sub:
                raise ConfigError(f"--set {item!r}: name the {head} key, as in {head}.<key>=value")
            updates.setdefault(head, {})[sub] = _parse_scalar(text)
        elif dot:
            raise _unknown_key(key, valid_keys(), "config")
        else:
            updates[key] = text
    return config_from_dict(updates, config) if updates else config


def apply_protocol_overrides(protocol: Protocol, overrides: dict[str, Any]) -> Protocol:
    """``protocol`` with the given fields changed; a changed protocol is named ``<name>-custom``."""
    if not overrides:
        return protocol
    hints = typing.get_type_hints(Protocol)
    valid = [f.name for f in dataclasses.fields(Protocol) if f.name != "name"]
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in valid:
            raise _unknown_key(key, valid, "protocol")
        values[key] = coerce(f"protocol.{key}", value, hints[key])
    changed = dataclasses.replace(protocol, **values)
    if changed.hash() == protocol.hash():
        return protocol
    return dataclasses.replace(changed, name=f"{protocol.name}-custom")
