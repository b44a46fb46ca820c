"""Offline, a name that needs a download fails in seconds with its one-line fix (not after a minute of retries)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from toolkit_fixture import make_toolkit_dataset
from vreid_bench import cli, cli_run
from vreid_bench.errors import ConfigError
from vreid_bench.models import clip_backbone
from vreid_bench.net import unreachable

FAST_S = 5.0


@pytest.fixture
def online_switches_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's offline switches off (the suite sets them), and no cached CLIP weights to fall back on.

    The packages a CG-CLIP run imports are imported first: their one-time import (about 6 s for open_clip on 2
    cores) is Python's, not the download's, and is not what these tests time."""
    import cgclip.model  # noqa: F401
    import open_clip  # noqa: F401

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(clip_backbone, "cached_clip_weights", lambda *args: None)


def run_cgclip(tmp_path: Path, cli_with, capsys) -> tuple[int, str, float]:
    dataset = make_toolkit_dataset(tmp_path)
    cli_with(cli_run)
    start = time.perf_counter()
    code = cli.main(["run", "cgclip", "--dataset", str(dataset), "--out", str(tmp_path / "runs"), "--epochs", "1"])
    return code, capsys.readouterr().err, time.perf_counter() - start


def test_an_unreachable_hub_on_loopback_fails_at_once_with_the_local_path_fix(tmp_path, cli_with, capsys,
                                                                            monkeypatch, online_switches_off):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, err, seconds = run_cgclip(tmp_path, cli_with, capsys)
    assert code == 2 and seconds < FAST_S, (seconds, err)
    assert "127.0.0.1:9 unreachable" in err and "pretrained=/path/to/ViT-B-16.pt" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_network_that_never_answers_costs_the_probe_timeout_only(tmp_path, cli_with, capsys, monkeypatch,
                                                                 online_switches_off):
    def black_hole(address, timeout=None, *args, **kwargs):
        time.sleep(30)  # packets dropped: no refusal ever comes

    monkeypatch.setattr(socket, "create_connection", black_hole)
    code, err, seconds = run_cgclip(tmp_path, cli_with, capsys)
    assert code == 2 and seconds < FAST_S, (seconds, err)
    assert "no answer from huggingface.co:443" in err and "--pretrained" in err


def test_hf_hub_offline_fails_without_trying(tmp_path, cli_with, capsys, monkeypatch, online_switches_off):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: pytest.fail("the network was tried"))
    code, err, seconds = run_cgclip(tmp_path, cli_with, capsys)
    assert code == 2 and seconds < FAST_S
    assert "HF_HUB_OFFLINE=1" in err and "pretrained=/path/to/ViT-B-16.pt" in err


def test_imagenet_resnet_weights_fail_fast_too(tmp_path, monkeypatch):
    import torch

    from baselines.tap import ResNetTapConfig, create_resnet_tap

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # nothing cached
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("down")))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"ImageNet ResNet-50 weights needs a download but download.pytorch.org:443 "
                                          r"unreachable .*pretrained=/path/to/resnet50.pth"):
        create_resnet_tap(ResNetTapConfig(), num_ids=3, num_cams=2, pretrained="imagenet", image_size=(64, 32),
                          seq_len=2)
    assert time.perf_counter() - start < FAST_S


def test_the_probe_answers_for_a_listening_port() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        assert unreachable(f"http://127.0.0.1:{server.getsockname()[1]}") is None
    finally:
        server.close()
