"""Model registry: every model by name, built from its config dataclass.

Entries name their factory and config class by import string, so nothing heavy is imported until a model is
used. A factory is called as ``factory(config, num_ids=..., num_cams=..., pretrained=..., image_size=(H, W),
seq_len=T)`` and returns a :class:`~vreid_bench.models.base.ReIDModel`; ``pretrained=None`` means the
backbone's usual weights (OpenAI CLIP, ImageNet ResNet-50; random for the ``tiny`` test backbones).
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vreid_bench.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from vreid_bench.models.base import ReIDModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: str  # "module:function"
    config: str  # "module:ConfigClass", a dataclass whose fields are the model's settings
    summary: str


MODEL_REGISTRY: Mapping[str, ModelEntry] = types.MappingProxyType({
    entry.name: entry
    for entry in (
        ModelEntry("cgclip", "cgclip.model:create", "cgclip.model:CGCLIPConfig",
                   "CG-CLIP: caption-guided memory refinement + token-based feature extraction"),
        ModelEntry("tfclip", "baselines.tfclip:create", "baselines.tfclip:TFCLIPConfig",
                   "TF-CLIP: CLIP-Memory, sequence-specific prompt, temporal memory diffusion"),
        ModelEntry("clipreid", "baselines.clipreid:create", "baselines.clipreid:CLIPReIDConfig",
                   "CLIP-ReID: learned identity prompts, then image-encoder fine-tuning; temporal average"),
        ModelEntry("clip-tap", "baselines.tap:create_clip_tap", "baselines.tap:ClipTapConfig",
                   "CLIP image encoder fine-tuned with temporal average pooling"),
        ModelEntry("resnet-tap", "baselines.tap:create_resnet_tap", "baselines.tap:ResNetTapConfig",
                   "ResNet-50 (last stride 1) with temporal average pooling, BNNeck, ID + triplet"),
    )
})


@dataclass(frozen=True)
class ConfigField:
    name: str
    type: str
    default: object


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``vreid models``; ``error`` says why the model's module could not be imported."""

    name: str
    summary: str
    fields: tuple[ConfigField, ...]
    error: str | None = None


def _normalise(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def get_model_entry(name: str) -> ModelEntry:
    """The entry of ``name``; case, ``-`` and ``_`` are ignored (``CLIP-ReID`` is ``clipreid``)."""
    key = _normalise(name)
    for entry in MODEL_REGISTRY.values():
        if _normalise(entry.name) == key:
            return entry
    raise UnknownNameError(
        f"unknown model {name!r}: use one of {', '.join(MODEL_REGISTRY)} (`vreid models` lists them)"
    )


def _import(target: str) -> Any:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def config_class(name: str) -> type:
    return _import(get_model_entry(name).config)


def model_config(name: str, **overrides: object) -> Any:
    """The config of model ``name`` with ``overrides`` applied; string values (``--set key=value``) are
    converted to the field's type. Unknown keys raise :class:`ConfigError` listing the valid ones."""
    entry = get_model_entry(name)
    cls = _import(entry.config)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for model {entry.name}: "
            f"valid keys are {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {key: _coerce(value, hints[key], key, entry.name) for key, value in overrides.items()}
    return cls(**values)


def create(name: str, num_ids: int, num_cams: int, pretrained: str | None = None,
           image_size: tuple[int, int] = (256, 128), seq_len: int = 8, **overrides: object) -> ReIDModel:
    """Build model ``name`` for ``num_ids`` training identities and ``num_cams`` cameras.

    ``pretrained``: weights of the backbone, a tag (``openai``, ``imagenet``), a local file, ``"none"``, or
    ``None`` for the backbone's usual weights. ``overrides`` set fields of the model's config.
    """
    entry = get_model_entry(name)
    config = model_config(entry.name, **overrides)
    if num_ids < 1:
        raise ConfigError(f"num_ids={num_ids}: a model needs at least one training identity; check the training split")
    if num_cams < 0:
        raise ConfigError(f"num_cams={num_cams} is negative: give the dataset's camera count")
    factory = _import(entry.factory)
    return factory(config, num_ids=num_ids, num_cams=num_cams, pretrained=pretrained,
                   image_size=tuple(image_size), seq_len=seq_len)


def list_models() -> list[ModelInfo]:
    """Every registered model with its settings and their defaults (for ``vreid models``)."""
    infos = []
    for entry in MODEL_REGISTRY.values():
        try:
            cls = _import(entry.config)
        except (ImportError, AttributeError) as exc:
            infos.append(ModelInfo(entry.name, entry.summary, (), error=f"{type(exc).__name__}: {exc}"))
            continue
        fields = tuple(
            ConfigField(field.name, _type_name(field.type), _default(field)) for field in dataclasses.fields(cls)
        )
        infos.append(ModelInfo(entry.name, entry.summary, fields))
    return infos


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _type_name(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(value: object, annotation: object, key: str, model: str) -> object:
    """``value`` as ``annotation`` (bool, int, float, str, Literal, ``X | None``, tuple); strings are parsed."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"} and type(None) in args):
            return None
        options = [arg for arg in args if arg is not type(None)]
        return _coerce(value, options[0], key, model) if len(options) == 1 else value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}={value!r} for model {model}: use one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{key}={value!r} for model {model}: give a comma-separated list")
        item_type = args[0] if args else str
        return tuple(_coerce(item.strip() if isinstance(item, str) else item, item_type, key, model) for item in items)
    if annotation is bool:
        return _parse_bool(value, key, model)
    if annotation in (int, float):
        return _parse_number(value, annotation, key, model)
    if annotation is str and not isinstance(value, str):
        raise ConfigError(f"{key}={value!r} for model {model}: give a string")
    return value


def _parse_bool(value: object, key: str, model: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ConfigError(f"{key}={value!r} for model {model}: give true or false")


def _parse_number(value: object, kind: type, key: str, model: str) -> object:
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} for model {model}: give a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"{key}={value!r} for model {model}: give {expected}") from None
    if kind is int and isinstance(value, float) and number != value:
        raise ConfigError(f"{key}={value!r} for model {model}: give an integer")
    return number


__all__ = ["MODEL_REGISTRY", "ConfigField", "ModelEntry", "ModelInfo", "config_class", "create", "get_model_entry",
           "list_models", "model_config"]
