"""Open registries: built-in entries, entries registered in code, and entries of installed plugins.

A plugin is an installed distribution that declares an entry point in the registry's group (``vreid.models``,
``vreid.datasets``, ``vreid.captioners``); the entry point names an entry object, a list of them, or a function
that registers its entries when called. Plugins are read once, on first use. A name that is already taken (a
built-in or another registration) is a one-line error: nothing is replaced silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Generic, TypeVar

from vreid_bench.errors import ConfigError, UnknownNameError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Named entries of one kind (``kind`` names it in messages); ``group`` is the plugins' entry-point group."""

    def __init__(self, kind: str, group: str, builtins: Iterable[Entry], name_of: Callable[[Entry], str],
                 normalise: Callable[[str], str] = str.lower,
                 aliases_of: Callable[[Entry], Iterable[str]] = lambda e: ()) -> None:
        self.kind, self.group = kind, group
        self._name_of, self._normalise, self._aliases_of = name_of, normalise, aliases_of
        self._entries: dict[str, Entry] = {}
        self._builtin: set[str] = set()
        self._plugins_read = False
        for entry in builtins:
            self.add(entry)
            self._builtin.add(self._normalise(name_of(entry)))

    def add(self, entry: Entry, origin: str = "code") -> Entry:
        """Register ``entry``; a taken name or alias raises :class:`ConfigError`."""
        name = self._name_of(entry)
        for key in (name, *self._aliases_of(entry)):
            taken = self._lookup(key)
            if taken is not None:
                where = "a built-in" if self._normalise(self._name_of(taken)) in self._builtin else "already registered"
                raise ConfigError(f"{self.kind} {key!r} registered by {origin} clashes with {where} {self.kind} "
                                  f"{self._name_of(taken)!r}: register it under another name")
        self._entries[self._normalise(name)] = entry
        return entry

    def _lookup(self, name: str) -> Entry | None:
        key = self._normalise(name)
        if key in self._entries:
            return self._entries[key]
        for entry in self._entries.values():
            if key in {self._normalise(alias) for alias in self._aliases_of(entry)}:
                return entry
        return None

    def get(self, name: str) -> Entry:
        self.read_plugins()
        entry = self._lookup(name)
        if entry is None:
            raise UnknownNameError(f"unknown {self.kind} {name!r}: use one of {', '.join(self.names())}")
        return entry

    def entries(self) -> list[Entry]:
        self.read_plugins()
        return list(self._entries.values())

    def names(self) -> list[str]:
        return [self._name_of(entry) for entry in self.entries()]

    def remove(self, name: str) -> None:
        """Unregister a non-built-in entry (tests, interactive sessions)."""
        key = self._normalise(name)
        if key in self._builtin:
            raise ConfigError(f"{self.kind} {name!r} is built in and cannot be removed")
        self._entries.pop(key, None)

    def read_plugins(self) -> None:
        """Register the entries of every installed plugin of this group, once."""
        if self._plugins_read:
            return
        self._plugins_read = True
        for point in metadata.entry_points(group=self.group):
            origin = f"plugin {point.name} ({point.value})"
            try:
                loaded = point.load()
            except Exception as exc:  # a broken plugin must say which one it is
                raise ConfigError(f"{origin} could not be loaded ({type(exc).__name__}: {exc}); fix or uninstall "
                                  "it") from None
            if callable(loaded) and not isinstance(loaded, type):
                loaded = loaded()
            if loaded is None:
                continue  # the function registered its entries itself
            for entry in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
                self.add(entry, origin)
