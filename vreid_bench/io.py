"""Atomic writes: a reader never sees a half-written file or folder, and a crash never loses both copies.

- :func:`atomic_write` (and its text, bytes, JSON forms; ``save_torch_atomic`` on top): one file, written to a
  temporary sibling, flushed, renamed over the old one, the rename flushed to disk.
- :func:`staged_directory`: one folder, built aside and swapped in. At every instant the old or the new copy is
  in place: the old one is moved aside, the new one renamed in, and only then the old one removed; a leftover
  aside copy (a crash between the first two renames) is restored on the next start.
- :class:`Transaction`: several folders and files of one dataset replaced as one change. Everything is staged
  first; a journal written in one atomic step commits the change; the moves are then made, each of them
  repeatable. :func:`recover` (run by the toolkit loader and every writer) finishes a committed change a crash
  interrupted, or removes the staged copies of one that never committed: a reader always finds the old or the
  new dataset, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(handle)`` on a temporary sibling, then rename it over ``path``: a reader sees the old file or
    the whole new one. The file gets the permissions ``open()`` would give it; the rename is flushed to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened, as on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# Called after each step of a swap or a transaction with the step's name; tests set it to kill the process there.
_after_step: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _after_step is not None:
        _after_step(name)


def aside_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.aside")


def restore_aside(final: str | os.PathLike[str]) -> None:
    """Finish or undo a swap of ``final`` that a crash interrupted: with the new copy in place, remove the old
    one left aside; without it, put the old one back."""
    final = Path(final)
    aside = aside_path(final)
    if not aside.exists():
        return
    if final.exists():
        shutil.rmtree(aside)
    else:
        os.replace(aside, final)
        _fsync_directory(final.parent)


def swap_directory(stage: Path, final: Path) -> None:
    """Move ``stage`` to ``final``, keeping the old or the new copy in place at every instant."""
    restore_aside(final)
    aside = aside_path(final)
    if final.exists():
        os.replace(final, aside)
        _step("aside")
    os.replace(stage, final)
    _fsync_directory(final.parent)
    _step("renamed")
    if aside.exists():
        shutil.rmtree(aside)
        _step("removed")


def _make_stage(final: Path, suffix: str) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the permissions mkdir would
    return stage


@contextmanager
def staged_directory(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``final`` (:func:`swap_directory`), on error it
    is removed. A swap of ``final`` that a crash interrupted is finished or undone first."""
    final = Path(final)
    restore_aside(final)
    stage = _make_stage(final, ".partial")
    try:
        yield stage
        swap_directory(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


JOURNAL = ".vreid-transaction.json"
STAGED_SUFFIX = ".staged"


class Transaction:
    """Replace folders and files under ``root`` as one change (see the module docstring).

    ``folder(final)`` and ``file(final)`` give a staged path to fill; :meth:`commit` makes the change, and an
    exception before it (or :meth:`abort`) leaves ``root`` as it was. Paths are kept relative to ``root``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        recover(self.root)
        self.entries: list[dict[str, str]] = []

    def _add(self, kind: str, final: Path, stage: Path) -> Path:
        self.entries.append({"kind": kind, "final": str(final.relative_to(self.root)),
                             "stage": str(stage.relative_to(self.root))})
        return stage

    def folder(self, final: str | os.PathLike[str]) -> Path:
        final = Path(final)
        restore_aside(final)  # an earlier swap's leftover would otherwise stop this one's move at commit
        stage = self._add("folder", final, _make_stage(final, STAGED_SUFFIX))
        _step(f"staging {final.name}")
        return stage

    def file(self, final: str | os.PathLike[str]) -> Path:
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, stage = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=STAGED_SUFFIX)
        os.close(fd)
        _step(f"staging {final.name}")
        return self._add("file", final, Path(stage))

    def commit(self) -> None:
        """Write the journal (the change is made from here on, even across a crash), then make the moves."""
        atomic_write_json(self.root / JOURNAL, {"entries": self.entries})
        _step("journal")
        _roll_forward(self.root, self.entries)

    def abort(self) -> None:
        for entry in self.entries:
            path = self.root / entry["stage"]
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self.entries = []

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is not None:
            self.abort()


def _roll_forward(root: Path, entries: list[dict[str, str]]) -> None:
    """Make a committed change's moves; every move can be repeated after a crash, in the same order."""
    for entry in entries:
        final, stage = root / entry["final"], root / entry["stage"]
        if entry["kind"] == "file":
            if stage.exists():
                os.replace(stage, final)
                _fsync_directory(final.parent)
                _step(f"file {entry['final']}")
            continue
        aside = aside_path(final)
        if stage.exists() and final.exists() and not aside.exists():
            os.replace(final, aside)
            _step(f"aside {entry['final']}")
        if stage.exists() and not final.exists():
            os.replace(stage, final)
            _fsync_directory(final.parent)
            _step(f"renamed {entry['final']}")
    for entry in entries:
        aside = aside_path(root / entry["final"])
        if entry["kind"] == "folder" and aside.exists():
            shutil.rmtree(aside)
            _step(f"removed {entry['final']}")
    (root / JOURNAL).unlink(missing_ok=True)
    _fsync_directory(root)
    _step("done")


def recover(root: str | os.PathLike[str]) -> bool:
    """Finish a committed change a crash interrupted (True), or remove the staged copies of one that never
    committed; a folder without either is left as it is."""
    root = Path(root)
    journal = root / JOURNAL
    if journal.is_file():
        try:
            entries = json.loads(journal.read_text())["entries"]
        except (OSError, ValueError, KeyError):
            entries = None
        if entries is not None:  # a torn journal cannot exist (it is written atomically); be safe anyway
            _roll_forward(root, entries)
            return True
    if root.is_dir():
        for folder in (root, *(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))):
            for stale in folder.glob(f".*{STAGED_SUFFIX}"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
    return False
