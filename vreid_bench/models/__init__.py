"""Model registry: every model by name, built from its config dataclass.

Built-in entries name their factory and config class by import string, so nothing heavy is imported until a model
is used. A factory is called as ``factory(config, num_ids=..., num_cams=..., pretrained=..., image_size=(H, W),
seq_len=T)`` and returns a :class:`~vreid_bench.models.base.ReIDModel`; ``pretrained=None`` means the
backbone's usual weights (OpenAI CLIP, ImageNet ResNet-50; random for the ``tiny`` test backbones).

The registry is open: :func:`register_model` adds a model from code, and an installed package adds one through
the ``vreid.models`` entry-point group (see :mod:`vreid_bench.registry`).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vreid_bench.coerce import build_dataclass, field_default
from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.registry import Registry

if TYPE_CHECKING:
    from vreid_bench.models.base import ReIDModel


@dataclass(frozen=True)
class ModelEntry:
    """``factory`` and ``config`` are objects or ``"module:attribute"`` strings; ``config`` is a dataclass whose
    fields are the model's settings. ``recipe``: its reference recipe, ``"package:path"`` of a packaged file or a
    file path (None: vreid's default recipe, to be changed with ``--recipe`` or ``--set``)."""

    name: str
    factory: Any
    config: Any
    summary: str = ""
    recipe: str | None = None


BUILTIN_MODELS: tuple[ModelEntry, ...] = (
        ModelEntry("cgclip", "cgclip.model:create", "cgclip.model:CGCLIPConfig",
                   "CG-CLIP: caption-guided memory refinement + token-based feature extraction",
                   "cgclip:recipes/cgclip.yaml"),
        ModelEntry("tfclip", "baselines.tfclip:create", "baselines.tfclip:TFCLIPConfig",
                   "TF-CLIP: CLIP-Memory, sequence-specific prompt, temporal memory diffusion",
                   "baselines:recipes/tfclip.yaml"),
        ModelEntry("clipreid", "baselines.clipreid:create", "baselines.clipreid:CLIPReIDConfig",
                   "CLIP-ReID: learned identity prompts, then image-encoder fine-tuning; temporal average",
                   "baselines:recipes/clipreid.yaml"),
        ModelEntry("clip-tap", "baselines.tap:create_clip_tap", "baselines.tap:ClipTapConfig",
                   "CLIP image encoder fine-tuned with temporal average pooling",
                   "baselines:recipes/clip-tap.yaml"),
        ModelEntry("resnet-tap", "baselines.tap:create_resnet_tap", "baselines.tap:ResNetTapConfig",
                   "ResNet-50 with temporal average pooling, ID + triplet (Gao & Nevatia's temporal pooling)",
                   "baselines:recipes/resnet-tap.yaml"),
)


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


MODELS: Registry[ModelEntry] = Registry("model", "vreid.models", BUILTIN_MODELS, lambda entry: entry.name,
                                         normalise=_normalise)


def register_model(name: str, factory: Any = None, config: Any = None, summary: str = "",
                   recipe: str | None = None) -> Any:
    """Add model ``name``: ``register_model("mine", factory, MyConfig)``, or as a decorator on the factory
    (``@register_model("mine", config=MyConfig)``). A name taken by another model is a :class:`ConfigError`."""
    if config is None:
        raise ConfigError(f"register_model({name!r}): give config=, the dataclass of the model's settings")

    def register(function: Any) -> Any:
        MODELS.add(ModelEntry(name, function, config, summary, recipe))
        return function

    return register(factory) if factory is not None else register


def get_model_entry(name: str) -> ModelEntry:
    """The entry of ``name``; case, ``-`` and ``_`` are ignored (``CLIP-ReID`` is ``clipreid``)."""
    try:
        return MODELS.get(name)
    except UnknownNameError:
        raise UnknownNameError(
            f"unknown model {name!r}: use one of {', '.join(MODELS.names())} (`vreid models` lists them)"
        ) from None


def _import(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def config_class(name: str) -> type:
    return _import(get_model_entry(name).config)


def model_config(name: str, **overrides: object) -> Any:
    """The config of model ``name`` with ``overrides`` applied; string values (``--set model.key=value``) are
    converted to the field's type. Unknown keys raise :class:`ConfigError` listing the valid ones."""
    entry = get_model_entry(name)
    return build_dataclass(_import(entry.config), dict(overrides), f"model {entry.name} setting")


def uses_dataset_captions(name: str, settings: dict[str, object]) -> bool:
    """Whether model ``name`` with these settings trains on the dataset's captions (its config's
    ``uses_dataset_captions``; False for models without one): only then do the captions decide its result."""
    return bool(getattr(model_config(name, **settings), "uses_dataset_captions", False))


def stage_settings(name: str, stages: dict[str, dict[str, object]]) -> dict[str, object]:
    """The recipe's ``stages`` section checked against model ``name``'s stages: ``{stage: settings dataclass}``,
    every stage the model has included (its defaults where the recipe is silent)."""
    entry = get_model_entry(name)
    declared: dict[str, type] = getattr(_import(entry.config), "STAGES", {})
    unknown = sorted(set(stages) - set(declared))
    if unknown:
        have = ", ".join(declared) or "none"
        raise ConfigError(f"recipe stages.{unknown[0]} is not a stage of model {entry.name} (its stages: {have})")
    return {stage: build_dataclass(cls, dict(stages.get(stage, {})), f"stages.{stage}")
            for stage, cls in declared.items()}


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
    for entry in MODELS.entries():
        try:
            cls = _import(entry.config)
        except (ImportError, AttributeError) as exc:
            infos.append(ModelInfo(entry.name, entry.summary, (), error=f"{type(exc).__name__}: {exc}"))
            continue
        fields = tuple(
            ConfigField(field.name, _type_name(field.type), field_default(field)) for field in dataclasses.fields(cls)
        )
        infos.append(ModelInfo(entry.name, entry.summary, fields))
    return infos


def _type_name(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


__all__ = ["BUILTIN_MODELS", "MODELS", "ConfigField", "ModelEntry", "ModelInfo", "config_class", "create",
           "get_model_entry", "list_models", "model_config", "register_model", "stage_settings",
           "uses_dataset_captions"]
