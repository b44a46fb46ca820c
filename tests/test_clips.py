import numpy as np
import pytest
import torch
from PIL import Image

from vreid_bench.clips import (
    EvalClips,
    TrainClips,
    erase_with_noise,
    load_frame,
    normalize_clips,
    training_items,
)
from vreid_bench.data import Tracklet
from vreid_bench.errors import DatasetFormatError
from vreid_bench.recipe import Recipe, resolve

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


def recipe(*sets: str, seq_len: int = 4) -> Recipe:
    """vreid's default recipe at test size, no augmentation unless ``sets`` ask for it."""
    return resolve(None, sets=[f"input.height={H}", f"input.width={W}", f"input.seq_len={seq_len}",
                               "augment.flip_p=0", "augment.erasing.p=0", *sets])


def _frames(clip: torch.Tensor) -> list[int]:
    return (clip[:, 0, 0, 0] // 10).tolist()


def test_eval_clips_are_dense_and_in_temporal_order_the_last_padded_by_cycling(tmp_path):
    tracklets = [_tracklet(tmp_path, "a", 10), _tracklet(tmp_path, "b", 3, camid=1)]
    clips = EvalClips(tracklets, recipe().input, "dense")
    assert len(clips) == 3 + 1  # ceil(10/4) + ceil(3/4)
    frame_numbers = []
    for index in range(len(clips)):
        clip, owner, camid = clips[index]
        assert clip.shape == (4, 3, H, W) and clip.dtype == torch.uint8
        frame_numbers.append((owner, camid, _frames(clip)))
    # TF-CLIP's and Gao & Nevatia's dense sampling: a short last clip repeats its own frames.
    assert frame_numbers == [(0, 0, [0, 1, 2, 3]), (0, 0, [4, 5, 6, 7]), (0, 0, [8, 9, 8, 9]), (1, 1, [0, 1, 2, 0])]


def test_eval_clips_follow_the_protocols_other_samplings(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 10)
    assert _frames(EvalClips([tracklet], recipe().input, "restricted_random")[0][0]) == [0, 2, 5, 7]
    assert _frames(EvalClips([tracklet], recipe().input, "evenly")[0][0]) == [0, 3, 6, 9]


def test_frames_are_resized_to_the_input_size_with_the_recipes_filter(tmp_path):
    tracklet = _tracklet(tmp_path, "big", 1, size=(64, 128))
    assert load_frame(tracklet.frames[0], H, W).shape == (H, W, 3)
    noisy = np.random.default_rng(0).integers(0, 256, (100, 50, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    bilinear = load_frame(str(tmp_path / "noisy.png"), H, W, "bilinear")
    bicubic = load_frame(str(tmp_path / "noisy.png"), H, W, "bicubic")
    assert not np.array_equal(bilinear, bicubic)


def test_a_truncated_frame_is_one_error_naming_the_file(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 1)
    data = open(tracklet.frames[0], "rb").read()
    with open(tracklet.frames[0], "wb") as handle:
        handle.write(data[: len(data) // 3])
    with pytest.raises(DatasetFormatError, match="0000.png"):
        load_frame(tracklet.frames[0], H, W)


def test_training_flip_is_drawn_per_clip_or_per_frame(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 12)
    torch.manual_seed(0)
    clip, label, camid, index, boxes = TrainClips([tracklet], [0], recipe("augment.flip_p=1"))[0]
    assert (label, camid, index) == (0, 0, 0) and torch.equal(boxes, torch.zeros(4, 4, dtype=torch.int64))
    assert torch.all(clip[:, 1, :, 0] == 200) and torch.all(clip[:, 1, :, -1] == 0)  # green moved left
    clip, *_ = TrainClips([tracklet], [0], recipe())[0]
    assert torch.all(clip[:, 1, :, 0] == 0) and torch.all(clip[:, 1, :, -1] == 200)
    per_frame = TrainClips([tracklet], [0], recipe("augment.flip_p=0.5", "augment.per=frame", seq_len=8))
    torch.manual_seed(3)
    mixed = [bool(clip[t, 1, 0, 0] == 200) for clip in (per_frame[0][0] for _ in range(5)) for t in range(8)]
    assert 0 < sum(mixed) < len(mixed)


def test_pad_and_crop_shift_the_frame_by_at_most_the_padding(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 8)
    clips = TrainClips([tracklet], [0], recipe("augment.pad=4"))
    torch.manual_seed(0)
    shifts = set()
    for _ in range(30):
        clip = clips[0][0]
        assert clip.shape == (4, 3, H, W)
        green = (clip[0, 1, H // 2] == 200).nonzero().flatten()  # the green half's columns in the middle row
        left_edge = int(green.min())
        shifts.add(left_edge - W // 2)
        # one offset for the whole clip: every frame has its green edge at the same column
        assert all(int((clip[t, 1, H // 2] == 200).nonzero().min()) == left_edge for t in range(4))
    assert shifts <= set(range(-4, 5)) and len(shifts) > 3


def test_translation_enlarges_then_crops(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 8)
    clips = TrainClips([tracklet], [0], recipe("augment.translate_p=1"))
    torch.manual_seed(0)
    edges = {int((clips[0][0][0, 1, H // 2] > 100).nonzero().min()) for _ in range(30)}
    assert len(edges) > 1 and edges <= set(range(W // 2 - 2, W // 2 + 2))  # 16 -> 18 wide: shifts of 0..2


def test_training_erasing_is_drawn_per_frame_with_the_recipes_fill(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 12)
    clips = TrainClips([tracklet], [0], recipe("augment.erasing.p=0.5", seq_len=8))
    torch.manual_seed(1)
    erased_counts = []
    for _ in range(20):
        clip, *_ = clips[0]
        erased = (clip[:, 1] == 116).flatten(1).any(1)  # the ImageNet mean's green value appears only when erased
        erased_counts.append(int(erased.sum()))
    assert 0 < np.mean(erased_counts) < 8  # some frames of a clip erased, not all-or-nothing
    assert any(0 < c < 8 for c in erased_counts)
    colour = TrainClips([tracklet], [0], recipe("augment.erasing.p=1", "augment.erasing.fill=random_colour"))
    torch.manual_seed(2)
    clip, *_ = colour[0]
    assert not torch.equal(clip, TrainClips([tracklet], [0], recipe())[0][0])


def test_noise_erasing_happens_after_normalisation_inside_the_returned_boxes(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 8)
    clips = TrainClips([tracklet], [0], recipe("augment.erasing.p=1", "augment.erasing.fill=noise",
                                               "sampler.frames=evenly"))
    torch.manual_seed(0)
    clip, _, _, _, boxes = clips[0]
    plain = TrainClips([tracklet], [0], recipe("sampler.frames=evenly"))[0][0]
    assert torch.equal(clip, plain)  # pixels untouched in the worker
    assert bool((boxes[:, 2] > 0).all())
    inputs = normalize_clips(clip[None], recipe().input)
    before = inputs.clone()
    erase_with_noise(inputs, boxes[None])
    for t, (top, left, h, w) in enumerate(boxes.tolist()):
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[top:top + h, left:left + w] = True
        assert torch.equal(inputs[0, t][:, ~inside], before[0, t][:, ~inside])
        assert not torch.equal(inputs[0, t][:, inside], before[0, t][:, inside])
    assert abs(float(inputs[0][:, :, :, :].std()) - 1) < 1.5


def test_training_clip_frames_follow_the_recipes_sampler(tmp_path):
    tracklet = _tracklet(tmp_path, "a", 8)
    torch.manual_seed(0)
    clip, label, *_ = TrainClips([tracklet], [3], recipe())[0]
    assert label == 3 and [f // 2 for f in _frames(clip)] == [0, 1, 2, 3]  # one frame of each chunk of 2
    torch.manual_seed(0)
    run = _frames(TrainClips([tracklet], [0], recipe("sampler.frames=consecutive_random"))[0][0])
    assert run == list(range(run[0], run[0] + 4)) and run[0] <= 3


def test_sliding_windows_make_every_window_a_training_sample(tmp_path):
    tracklets = [_tracklet(tmp_path, "a", 20), _tracklet(tmp_path, "b", 6, pid=1)]
    spec = recipe("sampler.frames=sliding_window", "sampler.window_stride=4", seq_len=8)
    items, labels = training_items(tracklets, [0, 1], spec.sampler, spec.input.seq_len)
    # TF-CLIP's _pluckseq: starts range(0, n - seq_len, stride); a tracklet shorter than a window is one sample
    assert [len(item) for item in items] == [8, 8, 8, 6] and labels == [0, 0, 0, 1]
    assert [Path_name(item.frames[0]) for item in items] == ["0000", "0004", "0008", "0000"]
    clip = TrainClips(items, labels, spec)[3][0]
    assert _frames(clip) == [0, 1, 2, 3, 4, 5, 5, 5]  # the window's frames, the last repeated


def Path_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".")[0]


def test_normalize_follows_the_recipes_constants():
    clips = torch.randint(0, 256, (2, 4, 3, H, W), dtype=torch.uint8)
    spec = recipe().input
    out = normalize_clips(clips, spec)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    torch.testing.assert_close(out, (clips.float() / 255 - mean) / std)
    half = recipe("input.mean=[0.5, 0.5, 0.5]", "input.std=[0.5, 0.5, 0.5]").input
    torch.testing.assert_close(normalize_clips(clips, half), clips.float() / 127.5 - 1)
