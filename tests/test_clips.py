import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from vreid_bench.clips import EvalClips, TrainClips, load_frame, normalize_clips
from vreid_bench.data import Tracklet
from vreid_bench.protocol import get_protocol

H, W = 32, 16


def _tracklet(tmp_path, name, n, pid=0, camid=0, size=(W, H)):
    """Frames whose red channel encodes the frame number; left half dark, right half bright green."""
    folder = tmp_path / name
    folder.mkdir()
    paths = []
    for k in range(n):
        img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        img[..., 0] = 10 * k
        img[:, size[0] // 2:, 1] = 200
        path = folder / f"{k:04d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return Tracklet(frames=tuple(paths), pid=pid, camid=camid)


@pytest.fixture
def protocol():
    return dataclasses.replace(get_protocol("vreid-p1"), height=H, width=W, seq_len=4)


def test_eval_clips_are_dense_and_in_temporal_order(tmp_path, protocol):
    tracklets = [_tracklet(tmp_path, "a", 10), _tracklet(tmp_path, "b", 3, camid=1)]
    clips = EvalClips(tracklets, protocol)
    assert len(clips) == 3 + 1  # ceil(10/4) + ceil(3/4)
    frame_numbers = []
    for index in range(len(clips)):
        clip, owner, camid = clips[index]
        assert clip.shape == (4, 3, H, W) and clip.dtype == torch.uint8
        frame_numbers.append((owner, camid, (clip[:, 0, 0, 0] // 10).tolist()))
    assert frame_numbers == [
        (0, 0, [0, 1, 2, 3]), (0, 0, [4, 5, 6, 7]), (0, 0, [8, 9, 9, 9]), (1, 1, [0, 1, 2, 2]),
    ]


def test_frames_are_resized_to_the_protocol_size(tmp_path):
    tracklet = _tracklet(tmp_path, "big", 1, size=(64, 128))
    assert load_frame(tracklet.frames[0], H, W).shape == (H, W, 3)


def test_training_flip_is_the_same_for_every_frame(tmp_path, protocol):
    tracklet = _tracklet(tmp_path, "a", 12)
    flipped = TrainClips([tracklet], [0], dataclasses.replace(protocol, flip_p=1.0, erasing_p=0.0))
    kept = TrainClips([tracklet], [0], dataclasses.replace(protocol, flip_p=0.0, erasing_p=0.0))
    torch.manual_seed(0)
    clip, label, camid, index = flipped[0]
    assert (label, camid, index) == (0, 0, 0)
    assert torch.all(clip[:, 1, :, 0] == 200) and torch.all(clip[:, 1, :, -1] == 0)  # green moved left
    clip, *_ = kept[0]
    assert torch.all(clip[:, 1, :, 0] == 0) and torch.all(clip[:, 1, :, -1] == 200)


def test_training_erasing_is_drawn_per_frame(tmp_path, protocol):
    tracklet = _tracklet(tmp_path, "a", 12)
    clips = TrainClips([tracklet], [0], dataclasses.replace(protocol, flip_p=0.0, erasing_p=0.5, seq_len=8))
    torch.manual_seed(1)
    erased_counts = []
    for _ in range(20):
        clip, *_ = clips[0]
        erased = (clip[:, 1] == 116).flatten(1).any(1)  # the fill colour's green value appears only when erased
        erased_counts.append(int(erased.sum()))
    assert 0 < np.mean(erased_counts) < 8  # some frames of a clip erased, not all-or-nothing
    assert any(0 < c < 8 for c in erased_counts)


def test_training_samples_one_frame_per_chunk(tmp_path, protocol):
    tracklet = _tracklet(tmp_path, "a", 8)
    clips = TrainClips([tracklet], [3], dataclasses.replace(protocol, flip_p=0.0, erasing_p=0.0))
    torch.manual_seed(0)
    clip, label, *_ = clips[0]
    frames = (clip[:, 0, 0, 0] // 10).tolist()
    assert label == 3
    assert [f // 2 for f in frames] == [0, 1, 2, 3]


def test_normalize_matches_the_imagenet_formula(protocol):
    clips = torch.randint(0, 256, (2, 4, 3, H, W), dtype=torch.uint8)
    out = normalize_clips(clips, protocol)
    mean = torch.tensor(protocol.mean).view(3, 1, 1)
    std = torch.tensor(protocol.std).view(3, 1, 1)
    torch.testing.assert_close(out, (clips.float() / 255 - mean) / std)
