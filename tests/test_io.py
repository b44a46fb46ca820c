import os
import stat

import pytest

from vreid_bench.io import atomic_write_text, staged_directory


def test_atomic_write_replaces_whole_and_is_readable_by_others(tmp_path):
    path = tmp_path / "a" / "file.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]  # no temp file left


def test_staged_directory_appears_only_when_complete(tmp_path):
    final = tmp_path / "video"
    with pytest.raises(RuntimeError):
        with staged_directory(final) as stage:
            (stage / "x").write_text("half")
            raise RuntimeError("killed")
    assert not final.exists() and not any(tmp_path.iterdir())
    with staged_directory(final) as stage:
        (stage / "x").write_text("whole")
    assert (final / "x").read_text() == "whole"
    assert stat.S_IMODE(final.stat().st_mode) == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
