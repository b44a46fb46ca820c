"""Synthetic footage: exact public layouts, consistent ground truth, determinism, resume, attribute sheets."""

from __future__ import annotations

import configparser
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.synth import SynthResult, generate
from builders.synth import generator as synth_generator
from builders.synth import render as synth_render
from builders.synth.attributes import dance_identities, sports_identities
from builders.synth.render import FrameRenderer
from builders.synth.scene import NOISE_PAD, plan_scene
from vreid_bench.errors import ConfigError

SMALL = dict(width=320, height=180, frames=24, people=6, workers=1)
SPORTS_KEYS = {"team", "jersey_color", "jersey_number", "hair", "skin_tone", "shoes", "socks", "build",
               "accessories"}
DANCE_KEYS = {"costume", "hair", "skin_tone", "shoes", "socks", "build", "accessories"}


def read_gt(sequence: Path) -> np.ndarray:
    """(N, 9) int array of gt.txt, checking every line has nine integer fields."""
    rows = []
    for line in (sequence / "gt" / "gt.txt").read_text().splitlines():
        fields = line.split(",")
        assert len(fields) == 9, line
        rows.append([int(f) for f in fields])
    return np.asarray(rows)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sports(tmp_path_factory) -> SynthResult:
    return generate("sports", tmp_path_factory.mktemp("sports"), videos=3, seed=7, **SMALL)


@pytest.fixture(scope="module")
def dance(tmp_path_factory) -> SynthResult:
    return generate("dance", tmp_path_factory.mktemp("dance"), videos=2, seed=3, **SMALL)


def test_sports_layout_is_sportsmot(sports):
    root = sports.root
    names = ["v_synth-s7m001_c001", "v_synth-s7m002_c001", "v_synth-s7m003_c001"]
    assert [(s.name, s.split) for s in sports.sequences] == list(zip(names, ["train", "train", "val"]))
    assert (root / "splits_txt" / "train.txt").read_text() == "v_synth-s7m001_c001\nv_synth-s7m002_c001\n"
    assert (root / "splits_txt" / "val.txt").read_text() == "v_synth-s7m003_c001\n"
    assert sorted(p.name for p in root.iterdir()) == ["dataset", "splits_txt"]
    for sequence in sports.sequences:
        assert sequence.path == root / "dataset" / sequence.split / sequence.name
        assert sorted(p.name for p in sequence.path.iterdir()) == ["attributes.json", "det", "gt", "img1", "seqinfo.ini"]
        frames = sorted(p.name for p in (sequence.path / "img1").iterdir())
        assert frames == [f"{i:06d}.jpg" for i in range(1, 25)]
        assert sequence.num_frames == 24 and sequence.num_identities == 6
    assert not list(root.rglob(".*")), "no staging folders are left behind"


def test_dance_layout_is_dancetrack(dance):
    root = dance.root
    assert [(s.name, s.split) for s in dance.sequences] == [("dancetrack0001", "train"), ("dancetrack0002", "val")]
    assert (root / "train_seqmap.txt").read_text() == "name\ndancetrack0001\n"
    assert (root / "val_seqmap.txt").read_text() == "name\ndancetrack0002\n"
    for sequence in dance.sequences:
        assert sequence.path == root / sequence.split / sequence.name
        frames = sorted(p.name for p in (sequence.path / "img1").iterdir())
        assert frames == [f"{i:08d}.jpg" for i in range(1, 25)]
        assert (sequence.path / "gt" / "gt.txt").is_file() and (sequence.path / "attributes.json").is_file()


@pytest.mark.parametrize("which", ["sports", "dance"])
def test_seqinfo_matches_the_images(which, request):
    for sequence in request.getfixturevalue(which).sequences:
        info = configparser.ConfigParser()
        info.read(sequence.path / "seqinfo.ini")
        seq = info["Sequence"]
        frames = sorted((sequence.path / seq["imDir"]).glob(f"*{seq['imExt']}"))
        assert seq["name"] == sequence.path.name and seq["imDir"] == "img1" and seq["imExt"] == ".jpg"
        assert int(seq["seqLength"]) == len(frames) == sequence.num_frames
        assert int(seq["frameRate"]) == 25
        with Image.open(frames[-1]) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (int(seq["imWidth"]), int(seq["imHeight"])) == (320, 180)


@pytest.mark.parametrize("which", ["sports", "dance"])
def test_gt_boxes_are_inside_the_image_with_ids_one_to_n(which, request):
    for sequence in request.getfixturevalue(which).sequences:
        gt = read_gt(sequence.path)
        frame, track, left, top, width, height = gt[:, :6].T
        assert (gt[:, 6:] == 1).all()
        keys = list(zip(frame.tolist(), track.tolist()))
        assert keys == sorted(keys) and len(set(keys)) == len(keys), "sorted by frame then id, one box each"
        assert frame.min() >= 1 and frame.max() <= sequence.num_frames
        assert set(track.tolist()) == set(range(1, 7))
        assert (left >= 0).all() and (top >= 0).all() and (width >= 1).all() and (height >= 1).all()
        assert (left + width <= 320).all() and (top + height <= 180).all()
        assert set(track[frame == 1].tolist()) == set(range(1, 7)), "everybody starts in view"
        inside = (left > 0) & (top > 0) & (left + width < 320) & (top + height < 180)
        assert height[inside].min() >= 0.16 * 180, "a whole person is >= ~120 px tall at 720p"


def test_attribute_sheets_cover_every_identity(sports, dance):
    for result, kind, seed, keys in ((sports, "sports", 7, SPORTS_KEYS), (dance, "dance", 3, DANCE_KEYS)):
        for sequence in result.sequences:
            sheet = json.loads((sequence.path / "attributes.json").read_text())
            assert (sheet["video"], sheet["kind"], sheet["seed"]) == (sequence.name, kind, seed)
            assert sheet["difficulty"] == {"similarity": 0.5, "occlusion": 0.5, "blur": 0.5}
            ids = {str(t) for t in read_gt(sequence.path)[:, 1]}
            assert ids <= set(sheet["identities"])
            for attributes in sheet["identities"].values():
                assert set(attributes) == keys
                for key, value in attributes.items():
                    if key == "accessories":
                        assert isinstance(value, list) and all(isinstance(v, str) and v for v in value)
                    else:
                        assert isinstance(value, str) and value, (key, value)


def _distinguishing(attributes: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in attributes.items() if k not in ("team", "jersey_color", "costume")))


@pytest.mark.parametrize("similarity", [0.0, 0.5, 1.0])
def test_teammates_and_dancers_always_differ_in_some_attribute(similarity):
    rng = np.random.default_rng(11)
    for identities in (sports_identities(22, similarity, rng), dance_identities(30, similarity, rng)):
        sheets = [(i.team, _distinguishing(i.sheet())) for i in identities]
        for (team_a, a), (team_b, b) in itertools.combinations(sheets, 2):
            if team_a == team_b:
                assert a != b


def test_sports_teams_wear_one_jersey_colour_each_and_unique_numbers():
    identities = sports_identities(11, 0.5, np.random.default_rng(5))
    teams = {}
    for identity in identities:
        teams.setdefault(identity.team, []).append(identity.sheet())
    assert sorted(teams) == ["away", "home"] and sorted(len(v) for v in teams.values()) == [5, 6]
    colours = [{s["jersey_color"] for s in sheets} for sheets in teams.values()]
    assert all(len(c) == 1 for c in colours) and colours[0] != colours[1]
    for sheets in teams.values():
        numbers = [s["jersey_number"] for s in sheets]
        assert len(set(numbers)) == len(numbers)


def test_similarity_makes_identities_alike():
    def mean_differences(similarity: float) -> float:
        """Attributes in which two dancers differ, on average over pairs and a few troupes."""
        counts = []
        for seed in range(4):
            sheets = [i.sheet() for i in dance_identities(12, similarity, np.random.default_rng(seed))]
            counts += [sum(str(a[k]) != str(b[k]) for k in DANCE_KEYS) for a, b in itertools.combinations(sheets, 2)]
        return float(np.mean(counts))

    alike, middle, varied = mean_differences(1.0), mean_differences(0.5), mean_differences(0.0)
    assert 1.0 <= alike <= 2.0, "at 1.0 each dancer changes one detail of a common look"
    assert alike < middle < varied


def test_same_seed_same_bytes_other_seed_other_video(tmp_path):
    args = dict(videos=1, **SMALL)
    first = generate("sports", tmp_path / "a", seed=1, **args)
    second = generate("sports", tmp_path / "b", seed=1, progress=True, **args)
    other = generate("sports", tmp_path / "c", seed=2, **args)
    assert tree_digest(first.root) == tree_digest(second.root)
    frame = Path("dataset/train/v_synth-s1m001_c001/img1/000001.jpg")
    assert (first.root / frame).read_bytes() != (other.root / Path(str(frame).replace("s1", "s2"))).read_bytes()


def test_parallel_workers_write_the_same_bytes(tmp_path, dance):
    args = {**SMALL, "workers": 2}
    parallel = generate("dance", tmp_path / "parallel", videos=2, seed=3, progress=True, **args)
    assert tree_digest(parallel.root) == tree_digest(dance.root)


def test_resume_skips_complete_sequences_and_redoes_partial_ones(tmp_path, monkeypatch):
    args = dict(videos=2, seed=4, **SMALL)
    result = generate("dance", tmp_path, **args)
    before = tree_digest(tmp_path)
    val = result.sequences[1]

    # An interrupted run leaves a staging folder that holds what looks like a whole sequence, and no final one.
    stage = val.path.parent / f".{val.name}.x1y2.partial"
    val.path.rename(stage)
    (val.path.parent / "val_seqmap.txt").unlink(missing_ok=True)
    rendered = []
    real_render = synth_generator.render_sequence

    def counting_render(job, on_frame=None):
        rendered.append(job.name)
        return real_render(job, on_frame)

    monkeypatch.setattr(synth_generator, "render_sequence", counting_render)
    again = generate("dance", tmp_path, **args)
    assert rendered == [val.name], "only the sequence that never completed is rendered again"
    assert not stage.exists()
    assert tree_digest(tmp_path) == before
    assert again.sequences == result.sequences

    rendered.clear()
    generate("dance", tmp_path, **args)
    assert rendered == []
    generate("dance", tmp_path, **{**args, "blur": 0.1})
    assert rendered == [s.name for s in result.sequences], "other parameters: nothing is reused"


def test_people_leave_and_reenter_but_stay_in_view_most_of_the_time(tmp_path):
    result = generate("sports", tmp_path, videos=1, frames=60, fps=10, width=320, height=180, people=10, seed=0,
                      workers=1)
    gt = read_gt(result.sequences[0].path)
    returns = 0
    for track in range(1, 11):
        frames = np.sort(gt[gt[:, 1] == track, 0])
        assert len(frames) >= 0.6 * 60
        assert frames.min() <= 30 < frames.max(), "seen in both halves of the clip"
        returns += int(np.any(np.diff(frames) > 1))
    assert returns >= 1, "somebody leaves the view and comes back"


@pytest.mark.parametrize("kind", ["sports", "dance"])
def test_occlusion_crowds_people_together(kind):
    def nearest_neighbour_metres(occlusion: float, seed: int) -> float:
        ground = plan_scene(kind, 10, 50, 25, 320, 180, occlusion, np.random.default_rng(seed)).ground  # (F, N, 2)
        distance = np.linalg.norm(ground[:, :, None] - ground[:, None, :], axis=3) + np.eye(10) * 1e9
        return float(distance.min(axis=2).mean())

    for seed in range(3):
        assert nearest_neighbour_metres(1.0, seed) < 0.75 * nearest_neighbour_metres(0.0, seed)


@pytest.mark.parametrize("kind", ["sports", "dance"])
def test_boxes_span_exactly_the_drawn_figure(kind, monkeypatch):
    """Reference: the pixels a lone person changes on a flat, noiseless, shadowless background."""
    monkeypatch.setattr(synth_render, "SHADOW_DARKNESS", 0.0)
    width, height, frames = 320, 180, 12
    rng = np.random.default_rng(1)
    identities = (sports_identities if kind == "sports" else dance_identities)(4, 0.5, rng)
    plan = plan_scene(kind, 4, frames, 25, width, height, 0.5, rng)
    flat = np.full((height, plan.panorama.width, 3), 90, dtype=np.uint8)
    silence = np.zeros((height + NOISE_PAD, width + NOISE_PAD, 3), dtype=np.int16)
    checked = 0
    for person in identities:
        renderer = FrameRenderer(plan, [person], flat, silence, exposure=0.0)
        for frame in range(0, frames, 3):
            image, boxes = renderer.render(frame)
            changed = np.argwhere(np.any(image != 90, axis=2))
            if person.track_id not in boxes:
                assert len(changed) == 0
                continue
            left, top, w, h = boxes[person.track_id]
            assert changed[:, 0].min() >= top and changed[:, 0].max() < top + h
            assert changed[:, 1].min() >= left and changed[:, 1].max() < left + w
            if left > 0 and top > 0 and left + w < width and top + h < height:
                assert changed[:, 0].min() - top <= 1 and top + h - 1 - changed[:, 0].max() <= 1
                assert changed[:, 1].min() - left <= 1 and left + w - 1 - changed[:, 1].max() <= 1
                checked += 1
    assert checked >= 8


@pytest.mark.parametrize("kwargs, bad", [
    (dict(kind="tennis"), "'tennis'"),
    (dict(people=3), "people=3"),
    (dict(kind="dance", people=1), "people=1"),
    (dict(frames=0), "frames=0"),
    (dict(frames=2.5), "frames=2.5"),
    (dict(videos=0), "videos=0"),
    (dict(similarity=1.5), "similarity=1.5"),
    (dict(occlusion=-0.1), "occlusion=-0.1"),
    (dict(blur=float("nan")), "blur=nan"),
    (dict(width=10), "width=10"),
    (dict(fps=0), "fps=0"),
    (dict(seed=-1), "seed=-1"),
    (dict(workers=0), "workers=0"),
])
def test_bad_arguments_raise_a_one_line_config_error(tmp_path, kwargs, bad):
    args = {"kind": "sports", "out": tmp_path / "out", **kwargs}
    with pytest.raises(ConfigError) as error:
        generate(**args)
    message = str(error.value)
    assert bad in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        generate("sports", target, **SMALL)


def test_public_detections_follow_the_truth_with_a_detectors_noise():
    from builders.synth.detections import public_detections

    rows = [(frame, person, 20 + 60 * person, 40, 30, 80) for frame in range(1, 201) for person in range(1, 5)]
    text = public_detections(rows, 640, 360, seed=3)
    assert text == public_detections(rows, 640, 360, seed=3)  # seeded
    lines = np.array([[float(v) for v in line.split(",")] for line in text.splitlines()])
    assert set(lines[:, 1]) == {-1} and (lines[:, 6] <= 1).all()
    truth = np.array([r[2:] for r in rows], dtype=float)
    near = [np.abs(truth - box).sum(axis=1).min() < 20 for box in lines[:, 2:6]]
    kept = sum(near) / len(rows)
    assert 0.9 < kept < 0.99  # about 5 % of unoccluded people are missed
    assert 20 < len(lines) - sum(near) < 100  # and about 0.3 false positives a frame
