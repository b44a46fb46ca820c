"""The captioning recipe: prompt, frames per tracklet and how they are chosen, and generation settings, as data.

A recipe is a small YAML file (``builders/captions/recipes/<name>.yaml``, or any path). Its :attr:`CaptionRecipe.id`
(``<name>-v<version>-<hash>``) changes whenever a value does, and it is part of every caption's cache key, so a
changed prompt never silently reuses captions of the old one. The default, ``identity``, asks for fine-grained,
identity-specific details (hair, skin, shoes, socks, accessories, jersey number, pose) rather than what a whole
team shares. ``vreid caption --recipe FILE`` uses another; ``--frames`` and ``--max-new-tokens`` change one value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml

from vreid_bench.coerce import build_dataclass
from vreid_bench.errors import ConfigError, DatasetNotFoundError

DEFAULT_RECIPE = "identity"
FRAME_CHOICES = ("evenly_spaced", "central")
DECODINGS = ("greedy",)
T = TypeVar("T")


def evenly_spaced(items: Sequence[T], k: int) -> list[T]:
    """``k`` items spread over the whole sequence, first and last included (all of them when ``k >= len``)."""
    n = len(items)
    if k >= n:
        return list(items)
    if k <= 0:
        return []
    if k == 1:
        return [items[(n - 1) // 2]]
    return [items[int(i * (n - 1) / (k - 1) + 0.5)] for i in range(k)]  # round half up, not to even


def central(items: Sequence[T], k: int) -> list[T]:
    """``k`` consecutive items around the middle of the sequence (all of them when ``k >= len``)."""
    start = max(0, (len(items) - k) // 2)
    return list(items[start:start + k])


@dataclass(frozen=True)
class CaptionRecipe:
    """What a model captioner is asked and shown; see the module docstring."""

    name: str
    version: int
    prompt: str
    frames: int = 4
    frame_choice: str = "evenly_spaced"
    max_new_tokens: int = 64
    decoding: str = "greedy"

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ConfigError(f"caption recipe {self.name!r} has an empty prompt: write what to describe")
        if self.frames < 1:
            raise ConfigError(f"caption recipe frames={self.frames}: show at least one frame (4 is usual)")
        if self.max_new_tokens < 1:
            raise ConfigError(f"caption recipe max_new_tokens={self.max_new_tokens}: a caption needs ~30-60")
        if self.frame_choice not in FRAME_CHOICES:
            raise ConfigError(f"caption recipe frame_choice={self.frame_choice!r}: use {' or '.join(FRAME_CHOICES)}")
        if self.decoding not in DECODINGS:
            raise ConfigError(f"caption recipe decoding={self.decoding!r}: only greedy decoding is supported "
                              "(sampled captions would not be a function of the input, so the cache could not "
                              "reuse them)")

    @property
    def id(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return f"{self.name}-v{self.version}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"

    def choose_frames(self, frames: Sequence[str]) -> tuple[str, ...]:
        pick = evenly_spaced if self.frame_choice == "evenly_spaced" else central
        return tuple(pick(frames, self.frames))

    def with_changes(self, **changes: object) -> CaptionRecipe:
        given = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self  # type: ignore[arg-type]


def _read(path_or_name: str | Path) -> tuple[str, str]:
    path = Path(path_or_name).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise DatasetNotFoundError(f"caption recipe {path} does not exist; give a YAML file or a recipe name "
                                       f"({', '.join(recipe_names())})")
        return str(path), path.read_text(encoding="utf-8")
    packaged = resources.files("builders.captions").joinpath("recipes", f"{path_or_name}.yaml")
    if not packaged.is_file():
        raise ConfigError(f"unknown caption recipe {path_or_name!r}: use {', '.join(recipe_names())} or a YAML file")
    return f"recipe {path_or_name}", packaged.read_text(encoding="utf-8")


def recipe_names() -> list[str]:
    folder = resources.files("builders.captions").joinpath("recipes")
    return sorted(item.name[:-5] for item in folder.iterdir() if item.name.endswith(".yaml"))


def load_caption_recipe(path_or_name: str | Path | None = None) -> CaptionRecipe:
    """A packaged recipe by name (default ``identity``) or a YAML file; unknown keys and bad values are one line."""
    where, text = _read(path_or_name or DEFAULT_RECIPE)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of recipe keys")
    missing = [key for key in ("name", "version", "prompt") if key not in data]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}; a recipe needs a name, a version and a prompt")
    try:
        return build_dataclass(CaptionRecipe, data, "caption recipe")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
