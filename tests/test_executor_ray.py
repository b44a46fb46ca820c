"""The executors: a build as Ray tasks gives the process pool's dataset, and fails the way the pool does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from builders.build import build_dataset
from builders.executor import check_executor, make_executor
from test_mot_readers import write_sportsmot
from vreid_bench import cli, cli_build
from vreid_bench.datasets import load
from vreid_bench.errors import ConfigError, DatasetFormatError, UnknownNameError

SPLITS = {"train": ["v_a_c001"], "val": ["v_b_c002"]}  # 2 videos x 2 chunks of 32 frames: 4 tasks
PEOPLE, FRAMES = 2, 60


def staged_leftovers(out: Path) -> list[Path]:
    return list((out / "crops").glob(".*.partial")) if (out / "crops").is_dir() else []


@pytest.fixture
def cli_app(cli_with) -> typer.Typer:
    return cli_with(cli_build)


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    return write_sportsmot(tmp_path_factory.mktemp("src") / "sportsmot", SPLITS, PEOPLE, FRAMES)


@pytest.fixture(scope="module")
def broken_footage(tmp_path_factory) -> tuple[Path, Path]:
    """Footage whose second video has a frame that cannot be decoded; returns (root, the broken frame)."""
    root = write_sportsmot(tmp_path_factory.mktemp("broken") / "sportsmot", SPLITS, PEOPLE, FRAMES)
    frame = root / "dataset" / "val" / "v_b_c002" / "img1" / "000040.jpg"
    frame.write_bytes(b"not a jpeg")
    return root, frame


@pytest.fixture(scope="module")
def process_pool_results(footage, broken_footage, tmp_path_factory) -> dict[str, str]:
    """Fingerprints with one and two process workers, and the two-worker pool's error on the broken footage.

    Made before Ray starts, so that no worker is forked from a process holding Ray's threads.
    """
    out = tmp_path_factory.mktemp("process")
    results = {f"workers_{w}": build_dataset("sports", footage, out / f"w{w}", workers=w, progress=False).fingerprint
               for w in (1, 2)}
    with pytest.raises(DatasetFormatError) as failure:
        build_dataset("sports", broken_footage[0], out / "broken", workers=2, progress=False)
    assert not staged_leftovers(out / "broken")
    results["error"] = str(failure.value)
    return results


@pytest.fixture(scope="module")
def local_ray(request):
    """A local Ray instance of 2 CPUs for this module; builds find it through the existing connection."""
    ray = pytest.importorskip("ray")
    request.getfixturevalue("process_pool_results")  # the process pool runs first, before Ray's threads exist
    assert not ray.is_initialized()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


# ---------------------------------------------------------------------------------------------- Ray builds


def test_ray_build_gives_the_fingerprint_of_the_process_pool(local_ray, footage, process_pool_results, tmp_path):
    result = build_dataset("sports", footage, tmp_path / "ds", workers=2, progress=False, executor="ray")
    assert result.fingerprint == process_pool_results["workers_1"] == process_pool_results["workers_2"]
    assert result.built == ("v_a_c001", "v_b_c002") and result.counts["crops"] == 2 * PEOPLE * 50
    assert load(result.path).fingerprint == result.fingerprint
    assert not staged_leftovers(result.path)
    assert local_ray.is_initialized()  # a connection the build found is left to its owner


def test_cli_executor_ray_writes_the_same_dataset(local_ray, cli_app, footage, process_pool_results, tmp_path):
    out = tmp_path / "ds"
    result = CliRunner().invoke(cli_app, ["build", "sports", "--mot-root", str(footage), "--out", str(out),
                                          "--executor", "ray", "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert load(out).fingerprint == process_pool_results["workers_1"]


def test_failing_ray_task_raises_the_process_pool_error_and_leaves_no_staged_folder(
        local_ray, broken_footage, process_pool_results, tmp_path):
    root, frame = broken_footage
    out = tmp_path / "ds"
    with pytest.raises(DatasetFormatError) as failure:
        build_dataset("sports", root, out, workers=2, progress=False, executor="ray")
    assert str(failure.value) == process_pool_results["error"]
    assert str(failure.value) == f"{frame}: cannot be decoded as an image; replace the frame file"
    assert not staged_leftovers(out) and not (out / "manifest.json").exists()
    assert sorted(p.name for p in (out / "crops").iterdir()) in ([], ["v_a_c001"])


def test_cli_prints_a_failing_ray_task_as_one_line(local_ray, cli_app, broken_footage, process_pool_results,
                                                   tmp_path, capsys):
    code = cli.main(["build", "sports", "--mot-root", str(broken_footage[0]), "--out", str(tmp_path / "ds"),
                     "--executor", "ray", "--workers", "2", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"error: {process_pool_results['error']}"


def test_ray_futures_carry_results_and_the_task_s_own_exception(local_ray):
    with make_executor("ray", 2) as tasks:
        quotient = tasks.submit(divmod, 7, 2)
        failure = tasks.submit(int, "seven")
        worker_pid = tasks.submit(os.getpid)
        assert quotient.result() == (3, 1)
        assert worker_pid.result() != os.getpid()  # ran in a Ray worker, not in this process
        with pytest.raises(ValueError) as error:
            failure.result()
    assert str(error.value) == "invalid literal for int() with base 10: 'seven'"


# ------------------------------------------------------------------------------------------ choices checked


def test_executor_choices_are_checked_before_any_work():
    with pytest.raises(UnknownNameError, match="unknown executor 'thread': use one of process, ray"):
        check_executor("thread", 2)
    with pytest.raises(ConfigError, match="--workers 0 is invalid"):
        check_executor("process", 0)
    with pytest.raises(ConfigError, match="--ray-address head:6379 is only used with --executor ray"):
        check_executor("process", 2, "head:6379")


def test_missing_ray_says_how_to_install_it_before_any_work(monkeypatch, cli_app, footage, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    code = cli.main(["build", "sports", "--mot-root", str(footage), "--out", str(tmp_path / "ds"),
                     "--executor", "ray", "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.strip() == ("error: --executor ray needs the ray package: pip install ray, "
                                               "or use --executor process")
    assert not (tmp_path / "ds").exists()


def test_ray_detects_and_tracks_each_video_as_a_task(local_ray, tmp_path):
    from builders.track import FootageConfig, build_from_videos
    from test_video_track import FRAMES, det_text, walker_video, walkers

    dets = tmp_path / "dets"
    dets.mkdir()
    for name in ("a", "b"):
        walker_video(tmp_path / "in", name)
        (dets / f"{name}.txt").write_text(det_text(walkers(3, FRAMES)))
    footage = FootageConfig(detections=dets)
    here = build_from_videos("sports", [tmp_path / "in"], tmp_path / "here", footage, progress=False)
    on_ray = build_from_videos("sports", [tmp_path / "in"], tmp_path / "ray", footage, workers=2, executor="ray",
                               progress=False)
    assert on_ray.fingerprint == here.fingerprint and on_ray.built == ("a", "b")
