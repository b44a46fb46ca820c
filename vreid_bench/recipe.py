"""The training recipe: how a model is trained, as data in a YAML file beside the model.

A recipe holds the input (size, clip length, normalisation, resize filter), the augmentation, the sampler (P×K,
which frames make a clip, what an epoch is), the optimiser and its parameter groups, the schedule, the epochs, mixed
precision, the model's options and, for two-stage models, each extra stage. Every model has a reference recipe
(``baselines/recipes/tfclip.yaml``, ``cgclip/recipes/cgclip.yaml``), where each value says in a comment where it
comes from; ``datasets:`` sections hold what the authors changed per dataset. ``base: NAME`` (a model or a file)
starts a recipe from another one.

Values are resolved in order: vreid's defaults, the file (after its ``base``), the dataset's section, then
``--set key=value``; :attr:`Recipe.sources` says for every value which of these set it (and the comment that
cites it). The recipe's hash covers every value but the name, so two runs with equal settings share it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from vreid_bench.coerce import build_dataclass, coerce, parse_text
from vreid_bench.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Interpolation = Literal["bilinear", "bicubic"]
Precision = Literal["bf16", "fp16", "off"]
DEFAULT_SOURCE = "vreid default"
SET_SOURCE = "--set"


@dataclass(frozen=True)
class InputSpec:
    """What the model sees: ``height`` × ``width`` frames, clips of ``seq_len``, normalised by ``mean``/``std``
    (of 0–1 pixel values); frames resized with ``train_resize`` in training and ``test_resize`` otherwise."""

    height: int = 256
    width: int = 128
    seq_len: int = 8
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    train_resize: Interpolation = "bilinear"
    test_resize: Interpolation = "bilinear"

    def __post_init__(self) -> None:
        for key in ("height", "width", "seq_len"):
            if getattr(self, key) < 1:
                raise ConfigError(f"input.{key}={getattr(self, key)} must be >= 1")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"input.std={list(self.std)} must be positive")


@dataclass(frozen=True)
class ErasingSpec:
    """Random erasing (Zhong et al., 2020), drawn for each frame with probability ``p``: a box of ``area`` (a
    fraction of the frame) and aspect ratio (height / width) in ``aspect``, drawn uniformly or log-uniformly, filled
    with the normalisation mean (``mean``, zero after normalising), one random colour (``random_colour``) or
    per-pixel standard normal noise in normalised units (``noise``, timm's ``mode='pixel'``)."""

    p: float = 0.0
    area: tuple[float, float] = (0.02, 0.4)
    aspect: tuple[float, float] = (0.3, 3.3333333333333335)
    aspect_sampling: Literal["uniform", "log_uniform"] = "log_uniform"
    fill: Literal["mean", "random_colour", "noise"] = "mean"
    attempts: int = 100

    def __post_init__(self) -> None:
        _probability("augment.erasing.p", self.p)
        low, high = self.area
        if not 0 < low <= high < 1:
            raise ConfigError(f"augment.erasing.area={list(self.area)} must satisfy 0 < min <= max < 1")
        if not 0 < self.aspect[0] <= self.aspect[1]:
            raise ConfigError(f"augment.erasing.aspect={list(self.aspect)} must satisfy 0 < min <= max")
        if self.attempts < 1:
            raise ConfigError(f"augment.erasing.attempts={self.attempts} must be >= 1")


@dataclass(frozen=True)
class AugmentSpec:
    """Training augmentation. ``per``: geometric operations (flip, pad + crop, translation) are drawn once per
    clip or for each frame. ``pad``: zero padding before a random crop back to the input size. ``translate_p``:
    with this probability enlarge by ``translate_scale`` and random-crop back (Random2DTranslation)."""

    per: Literal["clip", "frame"] = "clip"
    flip_p: float = 0.5
    pad: int = 0
    translate_p: float = 0.0
    translate_scale: float = 1.125
    erasing: ErasingSpec = field(default_factory=ErasingSpec)

    def __post_init__(self) -> None:
        _probability("augment.flip_p", self.flip_p)
        _probability("augment.translate_p", self.translate_p)
        if self.pad < 0:
            raise ConfigError(f"augment.pad={self.pad} must be >= 0")
        if self.translate_scale < 1:
            raise ConfigError(f"augment.translate_scale={self.translate_scale} must be >= 1")


FrameSampling = Literal["restricted_random", "restricted_random_padded", "consecutive_random", "evenly",
                        "sliding_window"]


@dataclass(frozen=True)
class SamplerSpec:
    """Batches of ``ids_per_batch`` identities × ``instances_per_id`` clips.

    ``epoch``: ``tracklets`` walks every training tracklet once (in groups of K); ``identities`` draws one group of
    K per identity (open-reid's sampler). ``frames``: which frames make a training clip: ``restricted_random`` one
    random frame of each of ``seq_len`` near-equal chunks; ``restricted_random_padded`` the same with chunks of
    ``ceil(n / seq_len)`` frames, the tail padded with the last frame (TF-CLIP's); ``consecutive_random`` a random
    run of consecutive frames, looped when short (Gao & Nevatia's); ``evenly`` evenly spaced frames;
    ``sliding_window`` every window of ``seq_len`` consecutive frames every ``window_stride`` frames becomes a
    training sample of its own (TF-CLIP on iLIDS-VID)."""

    ids_per_batch: int = 4
    instances_per_id: int = 4
    epoch: Literal["tracklets", "identities"] = "tracklets"
    frames: FrameSampling = "restricted_random"
    window_stride: int = 4

    def __post_init__(self) -> None:
        for key in ("ids_per_batch", "instances_per_id", "window_stride"):
            if getattr(self, key) < 1:
                raise ConfigError(f"sampler.{key}={getattr(self, key)} must be >= 1")

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * self.instances_per_id


@dataclass(frozen=True)
class OptimizerSpec:
    """``lr`` for every parameter, times ``bias_lr_factor`` for biases (a name ending in ``bias``) and times the
    factor of the first ``lr_factors`` prefix a parameter's name starts with (e.g. a classifier at 10×)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    bias_lr_factor: float = 1.0
    lr_factors: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("lr", "weight_decay", "momentum", "bias_lr_factor"):
            if getattr(self, key) < 0:
                raise ConfigError(f"optimizer.{key}={getattr(self, key)} must be >= 0")
        bad = [name for name, factor in self.lr_factors.items() if factor < 0]
        if bad:
            raise ConfigError(f"optimizer.lr_factors: the factor of {bad[0]} must be >= 0")


@dataclass(frozen=True)
class ScheduleSpec:
    """Per epoch: linear warm-up from ``warmup_factor`` over ``warmup_epochs``, then ×``gamma`` at each milestone
    (``step``) or a half cosine to zero (``cosine``). ``offset``: epoch e trains at the factor of epoch e + offset
    (1 where the reference steps its scheduler at the start of an epoch rather than at its end)."""

    kind: Literal["step", "cosine"] = "step"
    warmup_epochs: int = 0
    warmup_factor: float = 0.1
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    offset: int = 0

    def __post_init__(self) -> None:
        if self.warmup_epochs < 0 or self.offset < 0:
            raise ConfigError("schedule.warmup_epochs and schedule.offset must be >= 0")
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"schedule.milestones={list(self.milestones)} must be increasing")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; see the module docstring. ``model``: the model's options (its config fields);
    ``stages``: settings of extra training stages by name (CLIP-ReID's ``prompts``)."""

    name: str = "custom"
    epochs: int = 60
    amp: Precision = "fp16"
    grad_clip: float | None = None
    sync_bn: bool = True
    compile: bool = False  # torch.compile the training network (opt-in: measure it, benchmarks/bench_train.py)
    input: InputSpec = field(default_factory=InputSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    model: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    origin: str = field(default="", compare=False, repr=False)  # the file it was resolved from

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs} must be >= 1")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip={self.grad_clip} must be > 0, or none")

    def to_dict(self) -> dict[str, Any]:
        """Every value, nested as in the file (tuples as lists), without the sources."""
        data = _plain(dataclasses.asdict(self))
        data.pop("sources")
        data.pop("origin")
        return data

    def hash(self) -> str:
        values = self.to_dict()
        values.pop("name")
        if not values["compile"]:
            values.pop("compile")  # the default leaves every earlier recipe's hash as it was
        payload = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_yaml(self, header: str | None = None) -> str:
        """The recipe as YAML with each value's source as a trailing comment (``vreid recipe show``)."""
        lines = [f"# {line}" for line in (header or "").splitlines()]
        own = f"{self.origin}: "
        sources = {path: source.removeprefix(own) if source != self.origin else ""
                   for path, source in self.sources.items()}
        lines += _emit(self.to_dict(), sources, "", 0)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], sources: Mapping[str, str] | None = None,
                  origin: str = "") -> "Recipe":
        """A recipe from its nested values (as :meth:`to_dict` gives them); unknown keys are refused."""
        return _build(copy.deepcopy(dict(data)), dict(sources or {}), origin)


SECTIONS: dict[str, type] = {"input": InputSpec, "augment": AugmentSpec, "sampler": SamplerSpec,
                             "optimizer": OptimizerSpec, "schedule": ScheduleSpec}
OPEN_MAPPINGS = ("model", "stages")  # their entries are checked by the model, not here
FILE_KEYS = ("base", "datasets")


def _probability(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}={value} must be a probability in [0, 1]")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------- building


def _build(tree: dict[str, Any], sources: dict[str, str], origin: str = "") -> Recipe:
    """Typed :class:`Recipe` from a nested tree; every section and key is checked."""
    tree = dict(tree)
    values: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        section = tree.pop(name, {}) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"recipe section {name} must be a mapping, got {section!r}")
        values[name] = _build_section(cls, section, name)
    for name in OPEN_MAPPINGS:
        mapping = tree.pop(name, {}) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"recipe section {name} must be a mapping, got {mapping!r}")
        values[name] = dict(mapping)
    for stage, settings in values["stages"].items():
        if not isinstance(settings, dict):
            raise ConfigError(f"recipe stages.{stage} must be a mapping of that stage's settings")
    top = {f.name for f in dataclasses.fields(Recipe)} - set(SECTIONS) - set(OPEN_MAPPINGS) - {"sources"}
    unknown = sorted(set(tree) - top)
    if unknown:
        valid = sorted(top | set(SECTIONS) | set(OPEN_MAPPINGS))
        raise ConfigError(f"unknown recipe key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: valid keys "
                          f"are {', '.join(valid)}")
    hints = typing.get_type_hints(Recipe)
    for key, value in tree.items():
        values[key] = coerce(key, value, hints[key])
    return Recipe(**values, sources=sources, origin=origin)


def _build_section(cls: type, section: dict[str, Any], path: str) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in section and dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
            sub = section[f.name] or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"recipe section {path}.{f.name} must be a mapping, got {sub!r}")
            values[f.name] = _build_section(f.default_factory, sub, f"{path}.{f.name}")
    plain = {k: v for k, v in section.items() if k not in values}
    try:
        typed = build_dataclass(cls, plain, f"recipe section {path}")
    except ConfigError as exc:
        raise ConfigError(_prefixed(str(exc), path)) from None
    return dataclasses.replace(typed, **values) if values else typed


def _prefixed(message: str, path: str) -> str:
    """``lr=...`` -> ``optimizer.lr=...``: a coercion message names the key within its section."""
    match = re.match(r"([A-Za-z_][\w]*)=", message)
    return f"{path}.{message}" if match else message


def default_tree() -> dict[str, Any]:
    """vreid's defaults as a nested tree (what a recipe that sets nothing resolves to)."""
    return Recipe().to_dict()


# ------------------------------------------------------------------------------------- files and sources


def _leaf_paths(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer.lr": 5e-06, "model.backbone": ...}``: the values a source is recorded for.

    A leaf is a value that is not a section: sections are the typed ones, ``augment.erasing``, ``model`` and each
    ``stages.<name>``; every other mapping (``optimizer.lr_factors``) is one value.
    """
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(path):
            leaves.update(_leaf_paths(value, path + "."))
        else:
            leaves[path] = value
    return leaves


def _is_section(path: str) -> bool:
    parts = path.split(".")
    if parts[0] in SECTIONS:
        return len(parts) == 1 or path == "augment.erasing"
    if parts[0] == "model":
        return len(parts) == 1
    if parts[0] == "stages":
        return len(parts) <= 2
    return parts[0] in FILE_KEYS and len(parts) <= 2


def merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``base`` with ``update`` merged in section by section (a leaf replaces, a section merges)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(path) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value, path + ".")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_COMMENT = re.compile(r"""^(?P<indent>\s*)(?P<key>[^\s#:'"][^:#]*?|'[^']*'|"[^"]*"):(?P<rest>.*)$""")


def _trailing_comment(text: str) -> str | None:
    """The ``# comment`` ending a YAML line, outside quotes."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[index + 1:].strip() or None
    return None


def read_comments(text: str) -> tuple[str | None, dict[str, str]]:
    """The file's header comment and the trailing comment of each key, by dotted path.

    Recipe files are block-style YAML; a comment on a section's line covers the keys below it that have none.
    """
    header: list[str] = []
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    seen_key = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if not seen_key and stripped.startswith("#"):
                header.append(stripped.lstrip("#").strip())
            continue
        match = _COMMENT.match(line)
        if not match:
            continue
        seen_key = True
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match.group("key").strip().strip("'\"")
        path = ".".join([*(k for _, k in stack), key])
        comment = _trailing_comment(match.group("rest"))
        if comment:
            comments[path] = comment
        value_text = match.group("rest").split("#", 1)[0].strip()
        if not value_text:
            stack.append((indent, key))
    return (" ".join(header) or None), comments


def _source_of(path: str, comments: Mapping[str, str], file_label: str) -> str:
    """A value's comment, else its nearest section's, else the file's name."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        comment = comments.get(".".join(parts[:end]))
        if comment:
            return f"{file_label}: {comment}"
    return file_label


@dataclass(frozen=True)
class RecipeFile:
    """One recipe file as read: its tree (``base`` not yet applied), per-dataset sections and comments."""

    label: str
    tree: dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    base: str | None
    comments: dict[str, str]
    header: str | None
    path: Path | None = None


def read_recipe_file(path: str | os.PathLike[str], label: str | None = None) -> RecipeFile:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist; give the path of a YAML recipe "
                          "(`vreid recipe show MODEL` prints one to start from)")
    text = path.read_text()
    return parse_recipe_text(text, label or path.name, path)


def parse_recipe_text(text: str, label: str, path: Path | None = None) -> RecipeFile:
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {label} is not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"recipe {label} must hold a mapping of recipe keys, not {type(tree).__name__}")
    header, comments = read_comments(text)
    datasets = tree.pop("datasets", None) or {}
    if not isinstance(datasets, dict) or not all(isinstance(v, dict) for v in datasets.values()):
        raise ConfigError(f"recipe {label}: datasets must map dataset names to recipe sections")
    base = tree.pop("base", None)
    return RecipeFile(label=label, tree=tree, datasets={str(k).lower(): v for k, v in datasets.items()},
                      base=None if base is None else str(base), comments=comments, header=header, path=path)


def _packaged_recipe(model: str) -> RecipeFile | None:
    """The reference recipe of a registered model: a packaged ``package:path`` or a file; None for a model
    registered without one (vreid's defaults apply)."""
    from vreid_bench.models import get_model_entry

    entry = get_model_entry(model)
    if entry.recipe is None:
        return None
    if ":" in entry.recipe and not Path(entry.recipe).is_file():
        package, _, name = entry.recipe.partition(":")
        text = resources.files(package).joinpath(name).read_text()
        return parse_recipe_text(text, f"{entry.name} recipe")
    return read_recipe_file(entry.recipe, f"{entry.name} recipe")


def _layers(file: RecipeFile, dataset: str | None, depth: int = 0) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """(tree, sources) layers in the order they apply: the base's first, then the file, then its dataset section."""
    if depth > 8:
        raise ConfigError(f"recipe {file.label}: its base chain is longer than 8 (a cycle?)")
    layers = []
    if file.base:
        base_path = Path(file.base) if file.path is None else (file.path.parent / file.base)
        base = read_recipe_file(base_path) if base_path.suffix in (".yaml", ".yml") else _packaged_recipe(file.base)
        if base is not None:
            layers += _layers(base, dataset, depth + 1)
    layers.append((file.tree, {p: _source_of(p, file.comments, file.label) for p in _leaf_paths(file.tree)}))
    if dataset and dataset in file.datasets:
        section = file.datasets[dataset]
        layers.append((section, {p: _source_of(f"datasets.{dataset}.{p}", file.comments, file.label)
                                 for p in _leaf_paths(section)}))
    return layers


def parse_sets(sets: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set key=value`` strings -> (recipe tree of the changes, protocol overrides).

    ``protocol.<key>`` goes to the evaluation protocol; every other key is a dotted recipe path
    (``optimizer.lr``, ``model.backbone``, ``stages.prompts.epochs``, ``epochs``).
    """
    recipe: dict[str, Any] = {}
    protocol: dict[str, Any] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or key.endswith("."):
            raise ConfigError(f"--set takes key=value, got {item!r} (for example --set optimizer.lr=1e-5)")
        if key.startswith("protocol."):
            protocol[key.removeprefix("protocol.")] = parse_text(text)
            continue
        _check_path(key)
        node = recipe
        parts = _split_path(key)
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_text(text)
    return recipe, protocol


def _split_path(key: str) -> list[str]:
    """``optimizer.lr_factors.video_neck.classifier`` keeps the prefix whole: lr_factors is one value."""
    parts = key.split(".")
    if parts[:2] == ["optimizer", "lr_factors"] and len(parts) > 2:
        return ["optimizer", "lr_factors", ".".join(parts[2:])]
    return parts


def _check_path(key: str) -> None:
    """An unknown section or key is refused here, listing the valid ones (entries of model/stages later)."""
    parts = key.split(".")
    head = parts[0]
    top = [f.name for f in dataclasses.fields(Recipe) if f.name != "sources"]
    if head not in top:
        raise ConfigError(f"unknown recipe key {key!r}: valid keys are {', '.join(top)} (and protocol.<key> for "
                          "the evaluation)")
    if head in SECTIONS:
        cls: type = SECTIONS[head]
        for depth, part in enumerate(parts[1:], start=1):
            names = {f.name: f for f in dataclasses.fields(cls)}
            if part not in names:
                where = ".".join(parts[:depth])
                raise ConfigError(f"unknown recipe key {key!r}: {where} has {', '.join(names)}")
            nested = names[part].default_factory
            if callable(nested) and dataclasses.is_dataclass(nested):
                cls = nested  # type: ignore[assignment]
                continue
            break
        if len(parts) == 1:
            raise ConfigError(f"--set {key}=...: name a key of {key}, e.g. {key}.{dataclasses.fields(cls)[0].name}")
    elif head not in OPEN_MAPPINGS and len(parts) > 1:
        raise ConfigError(f"unknown recipe key {key!r}: {head} is a single value")


PSEUDO_CAMERA_SOURCE = ("vreid: this dataset's cameras are pseudo-cameras (time segments of one video), which a "
                        "camera embedding would learn as an offset between every query and its matches; --set "
                        "model.camera_embedding=true turns it on")


def resolve(file: RecipeFile | None, dataset: str | None = None, sets: Sequence[str] = (),
            facts: Sequence[tuple[dict[str, Any], str]] = ()) -> Recipe:
    """The recipe ``file`` (and its base) gives for ``dataset``, then ``facts`` (changes the dataset calls for,
    each with its source), then the ``--set`` changes."""
    tree = default_tree()
    sources = {path: DEFAULT_SOURCE for path in _leaf_paths(tree)}
    if file is not None:
        for layer, layer_sources in _layers(file, dataset):
            tree = merge(tree, layer)
            sources.update(layer_sources)
    for layer, source in facts:
        tree = merge(tree, layer)
        sources.update({path: source for path in _leaf_paths(layer)})
    changes, protocol = parse_sets(sets)
    if protocol:
        keys = ", ".join(f"protocol.{k}" for k in protocol)
        raise ConfigError(f"{keys} changes the evaluation, not the recipe: pass it where a protocol is chosen")
    tree = merge(tree, changes)
    sources.update({path: SET_SOURCE for path in _leaf_paths(changes)})
    leaves = _leaf_paths(tree)
    sources = {path: source for path, source in sources.items() if path in leaves}
    return _build(tree, sources, file.label if file is not None else "")


def reference_recipe(model: str, dataset: str | None = None, sets: Sequence[str] = ()) -> Recipe:
    """Model ``model``'s reference recipe for dataset family ``dataset`` (``mars``, ``ilidsvid``, ``sports`` ...)."""
    return resolve(_packaged_recipe(model), dataset, sets)


def recipe_for(model: str, dataset: str | None = None, file: str | os.PathLike[str] | None = None,
               sets: Sequence[str] = (), shared: bool = False, pseudo_cameras: bool = False) -> Recipe:
    """The recipe ``model`` trains with on dataset family ``dataset``: its reference recipe, or ``file``, then
    ``sets``; every model option and stage is checked against the model.

    ``shared``: ``file`` is one recipe for several models (``vreid compare --recipe``). Its training settings apply
    to every model; each model keeps its own reference options and stages, changed only by the ``model`` and
    ``stages`` keys the shared file itself (not its base) and ``sets`` write, where the model has them. Keys a
    model lacks are dropped here (:func:`check_shared_keys` checks that each belongs to one of the models);
    otherwise an unknown key is refused.

    ``pseudo_cameras``: the dataset's cameras are time segments of single videos (every ``vreid build``), so a
    model with a camera embedding trains without it unless ``sets`` turn it on (:data:`PSEUDO_CAMERA_SOURCE`).
    """
    from vreid_bench.models import config_class, get_model_entry, model_config, stage_settings

    entry = get_model_entry(model)
    own = _packaged_recipe(entry.name)
    facts = []
    if pseudo_cameras and "camera_embedding" in {f.name for f in dataclasses.fields(config_class(entry.name))}:
        facts.append(({"model": {"camera_embedding": False}}, PSEUDO_CAMERA_SOURCE))
    recipe = resolve(read_recipe_file(file) if file is not None else own, dataset, sets, facts)
    if file is None and own is None:  # a model registered without a recipe trains with vreid's defaults
        recipe = dataclasses.replace(recipe, name=entry.name)
    if shared and file is not None:
        recipe = _with_own_model_options(recipe, resolve(own, dataset, facts=facts), read_recipe_file(file), dataset,
                                         sets)
    fields = {f.name for f in dataclasses.fields(config_class(entry.name))}
    stages = set(getattr(config_class(entry.name), "STAGES", {}))
    foreign = [f"model.{key}" for key in recipe.model if key not in fields]
    foreign += [f"stages.{name}" for name in recipe.stages if name not in stages]
    if foreign and not shared:
        valid = ", ".join(sorted(fields))
        raise ConfigError(f"{foreign[0]} is not a setting of model {entry.name}: its model settings are {valid}"
                          f"{'; its stages: ' + ', '.join(stages) if stages else ''}")
    kept = dataclasses.replace(recipe, model={k: v for k, v in recipe.model.items() if k in fields},
                               stages={k: v for k, v in recipe.stages.items() if k in stages})
    leaves = _leaf_paths(kept.to_dict())
    kept = dataclasses.replace(kept, sources={p: v for p, v in recipe.sources.items() if p in leaves})
    model_config(entry.name, **kept.model)  # every option checked now, not after minutes of data loading
    stage_settings(entry.name, kept.stages)
    return kept


def _with_own_model_options(recipe: Recipe, own: Recipe, file: RecipeFile, dataset: str | None,
                            sets: Sequence[str]) -> Recipe:
    """``recipe`` (a shared file resolved) with the model's own options and stages under the shared file's own
    ``model`` / ``stages`` keys and the ``--set`` ones."""
    written = merge(file.tree, file.datasets.get(dataset or "", {}))
    changes, _ = parse_sets(sets)
    layers = [({"model": own.model, "stages": own.stages}, own.sources),
              ({"model": written.get("model") or {}, "stages": written.get("stages") or {}}, recipe.sources),
              ({"model": changes.get("model") or {}, "stages": changes.get("stages") or {}}, recipe.sources)]
    tree: dict[str, Any] = {"model": {}, "stages": {}}
    sources = {p: v for p, v in recipe.sources.items() if not p.startswith(("model.", "stages."))}
    for layer, layer_sources in layers:
        tree = merge(tree, layer)
        sources.update({p: layer_sources.get(p, SET_SOURCE) for p in _leaf_paths(layer)})
    return dataclasses.replace(recipe, model=tree["model"], stages=tree["stages"], sources=sources)


def check_shared_keys(models: Sequence[str], dataset: str | None, file: str | os.PathLike[str] | None,
                      sets: Sequence[str]) -> None:
    """Refuse a ``model.<key>`` or ``stages.<name>`` of a shared recipe or ``--set`` that none of ``models`` has:
    it is a typo, not a setting for another run."""
    from vreid_bench.models import config_class

    wanted: set[str] = set()
    changes, _ = parse_sets(sets)
    wanted |= {f"model.{k}" for k in changes.get("model", {})} | {f"stages.{k}" for k in changes.get("stages", {})}
    if file is not None:  # the file's own keys; what it inherits from its base belongs to that base's model
        shared = read_recipe_file(file)
        tree = merge(shared.tree, shared.datasets.get(dataset or "", {}))
        wanted |= {f"model.{k}" for k in tree.get("model") or {}} | {f"stages.{k}" for k in tree.get("stages") or {}}
    have: set[str] = set()
    for model in models:
        cls = config_class(model)
        have |= {f"model.{f.name}" for f in dataclasses.fields(cls)}
        have |= {f"stages.{name}" for name in getattr(cls, "STAGES", {})}
    orphans = sorted(wanted - have)
    if orphans:
        raise ConfigError(f"{', '.join(orphans)} belong{'s' if len(orphans) == 1 else ''} to none of "
                          f"{', '.join(models)}; `vreid models` lists each model's settings")


def recipe_header(recipe: Recipe, model: str | None, dataset: str | None) -> str:
    where = f" for {model}" if model else ""
    on = f" on {dataset}" if dataset else ""
    return f"recipe {recipe.name}{where}{on} (hash {recipe.hash()}); each value's source follows it"


# ------------------------------------------------------------------------------------------------ YAML out


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _emit(tree: Mapping[str, Any], sources: Mapping[str, str], prefix: str, depth: int) -> list[str]:
    lines = []
    rows = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(path):
            rows.append((f"{'  ' * depth}{key}:", None))
            lines_before = len(rows)
            for line in _emit(value, sources, path + ".", depth + 1):
                rows.append((line, "raw"))
            if len(rows) == lines_before:
                rows[-1] = (f"{'  ' * depth}{key}: {{}}", None)
        else:
            rows.append((f"{'  ' * depth}{key}: {_scalar(value)}", sources.get(path)))
    width = max((len(text) for text, source in rows if source != "raw"), default=0)
    for text, source in rows:
        if source == "raw" or not source:
            lines.append(text)
        else:
            lines.append(f"{text.ljust(width)}  # {source}")
    return lines


__all__ = ["AugmentSpec", "ErasingSpec", "InputSpec", "OptimizerSpec", "Recipe", "RecipeFile", "SamplerSpec",
           "ScheduleSpec", "merge", "parse_sets", "read_recipe_file", "recipe_header", "reference_recipe", "resolve"]
