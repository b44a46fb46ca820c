"""One way to turn a setting's text (``--set key=value``) or YAML value into the type its dataclass declares.

Recipes, model configs and protocol overrides all go through :func:`coerce`, so ``true``, ``1e-5``, ``30,50`` and
``[30, 50]`` mean the same everywhere and a bad value gets the same one-line error naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

import yaml

from vreid_bench.errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULLS = {"none", "null", "~", ""}


def parse_text(text: str) -> Any:
    """A ``--set`` value as YAML reads it (``1e-5`` a number, ``[30, 50]`` a list, ``{a: 1}`` a mapping)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads 1e-5 (no dot) as a string; a number is what a user means.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            return value
    return value


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` declares; raises :class:`ConfigError` naming ``key`` otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
        return coerce(key, value, inner[0]) if len(inner) == 1 else value
    if origin is Literal:
        if isinstance(value, bool) and "off" in args:
            value = "on" if value else "off"  # YAML 1.1 reads a bare off / on as a boolean
        if value not in args:
            raise ConfigError(f"{key}={value!r}: use one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        return _coerce_tuple(key, value, args)
    if origin is dict:
        return _coerce_dict(key, value, args)
    if hint is bool:
        return _coerce_bool(key, value)
    if hint in (int, float):
        return _coerce_number(key, value, hint)
    if hint is str:
        if isinstance(value, (dict, list, tuple)):
            raise ConfigError(f"{key}={value!r}: give a single word or string")
        return str(value)
    return value


def _coerce_tuple(key: str, value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        parts: list[Any] = [p.strip() for p in text.split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif value is None:
        parts = []
    else:
        parts = [value]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(key, part, args[0]) for part in parts)
    if args and len(parts) != len(args):
        raise ConfigError(f"{key}={value!r}: give {len(args)} comma-separated values, e.g. "
                          f"{', '.join(['1'] * len(args))}")
    return tuple(coerce(key, part, arg) for part, arg in zip(parts, args or [str] * len(parts)))


def _coerce_dict(key: str, value: Any, args: tuple[Any, ...]) -> dict[Any, Any]:
    if isinstance(value, str):
        value = parse_text(value) if value.strip() else {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}={value!r}: give a mapping, e.g. {{name: value}}")
    key_type, value_type = args if args else (str, Any)
    return {coerce(key, k, key_type): coerce(f"{key}.{k}", v, value_type) for k, v in value.items()}


def _coerce_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key}={value!r}: give true or false")


def _coerce_number(key: str, value: Any, hint: type) -> int | float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: give a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: give {'an integer' if hint is int else 'a number'}") from None
    if hint is float:
        return number
    if not number.is_integer():
        raise ConfigError(f"{key}={value!r}: give an integer")
    return int(number)


def build_dataclass(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` with every value coerced to its field's type; unknown keys are one error listing the
    valid ones. ``where`` names the thing in messages (``model tfclip``, ``recipe section optimizer``)."""
    names = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown {where} key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: valid keys "
                          f"are {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    return cls(**{name: coerce(name, value, hints[name]) for name, value in values.items()})


def field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None
