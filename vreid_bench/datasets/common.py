"""Checks and file listing shared by the dataset loaders."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from vreid_bench.datasets import get_entry
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError


def require_path(path: Path, entry_name: str) -> Path:
    """``path`` if it exists, else the one-line error naming it and how to get the dataset."""
    if not path.exists():
        raise DatasetNotFoundError(f"{entry_name}: {path} is missing; {get_entry(entry_name).how_to_get}")
    return path


def check_split(entry_name: str, split: int, num_splits: int) -> int:
    if isinstance(split, bool) or not isinstance(split, int) or not 0 <= split < num_splits:
        raise ConfigError(f"{entry_name}: split={split!r} is out of range; use an integer 0..{num_splits - 1}")
    return split


def numbered_frames(directory: Path, frame_number: re.Pattern[str], fix: str) -> tuple[str, ...]:
    """Frames of one sequence folder in temporal order: sorted by the number ``frame_number`` captures."""
    with os.scandir(directory) as entries:
        numbered = [(int(m.group(1)), e.name) for e in entries if (m := frame_number.search(e.name))]
    if not numbered:
        raise DatasetFormatError(f"{directory} holds no frames; {fix}")
    return tuple(os.path.join(directory, name) for _, name in sorted(numbered))


def content_fingerprint(files: Sequence[Path], names: Iterable[str] = ()) -> str:
    """sha256 of the bytes of a dataset's index and split ``files`` and of the relative frame ``names`` it lists:
    two copies of a dataset share it, an edited or different one does not. The split chosen is not part of it
    (it is part of the evaluation protocol)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for name in names:
        digest.update(name.encode() + b"\n")
    return digest.hexdigest()
