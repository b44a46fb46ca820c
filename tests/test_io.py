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


def test_a_swap_killed_between_its_renames_keeps_a_copy_and_the_next_start_restores_it(tmp_path, monkeypatch):
    from vreid_bench import io as vreid_io

    final = tmp_path / "video"
    final.mkdir()
    (final / "old.txt").write_text("old")

    def killed(name: str) -> None:
        if name == "aside":
            raise KeyboardInterrupt  # the process dies after moving the old copy aside

    monkeypatch.setattr(vreid_io, "_after_step", killed)
    with pytest.raises(KeyboardInterrupt):
        with vreid_io.staged_directory(final) as stage:
            (stage / "new.txt").write_text("new")
    monkeypatch.setattr(vreid_io, "_after_step", None)
    assert not final.exists() and (tmp_path / ".video.aside" / "old.txt").is_file()  # the old copy survives
    vreid_io.restore_aside(final)
    assert (final / "old.txt").read_text() == "old" and not (tmp_path / ".video.aside").exists()

    with vreid_io.staged_directory(final) as stage:  # and the next swap goes through
        (stage / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video"] and (final / "new.txt").is_file()


def test_a_transaction_that_fails_before_its_commit_leaves_nothing(tmp_path):
    from vreid_bench.io import Transaction, atomic_write_text

    (tmp_path / "table.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with Transaction(tmp_path) as change:
            atomic_write_text(change.file(tmp_path / "table.csv"), "new")
            (change.folder(tmp_path / "crops" / "v1") / "a.jpg").write_bytes(b"x")
            raise RuntimeError("failed while staging")
    assert (tmp_path / "table.csv").read_text() == "old"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["crops", "table.csv"]
