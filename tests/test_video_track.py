"""Raw footage: video input, YOLO detection, boxmot tracking, and `vreid build --videos` end to end.

Identity purity, the figure the tracker tests assert: for each built tracklet, the fraction of its boxes whose
best-IoU ground-truth identity is the tracklet's majority identity (a box overlapping nobody counts as identity
-1). Averaged over boxes, and its minimum over tracklets, both against the synthetic footage's own ground truth.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from builders.detect import (
    DetectionFile, DetectorConfig, YoloDetector, detection_files, load_yolo, preserved_threads, read_detections,
)
from builders.synth import generate
from builders.track import (
    FootageConfig, TrackerConfig, build_from_videos, create_tracker, parse_tracker_options, run_tracker,
    sampled_recipe, track_video,
)
from builders.recipe import Recipe
from builders.video import Sampling, VideoInput, VideoReadError, collect_videos, probe, read_frames
from test_mot_readers import FPS, HEIGHT, WIDTH, draw_frames, walkers, write_video
from vreid_bench import cli
from vreid_bench.datasets import load
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, UnknownNameError

cv2 = pytest.importorskip("cv2")
pytest.importorskip("boxmot")

FRAMES = 60  # at 10 fps: two pseudo-cameras of 25 frames around a 10-frame gap
TEST_ONLY = Recipe(few_videos="test")  # one video whose people are there throughout: no time split is possible


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach the network: ultralytics reads this before any download or online check."""
    monkeypatch.setenv("YOLO_OFFLINE", "1")


# ------------------------------------------------------------------------------------------------- helpers


def det_text(rows, conf: float = 0.9) -> str:
    return "".join(f"{f},-1,{l:.2f},{t:.2f},{w:.2f},{h:.2f},{conf}\n" for f, _, l, t, w, h in rows)


def walker_video(folder: Path, name: str = "clip") -> Path:
    """An MP4 written by OpenCV: three people walking side by side, FRAMES frames of WIDTH x HEIGHT."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_video(folder / f"{name}.mp4", walkers(3, FRAMES), FRAMES)


def faststart_copy(source: Path, target: Path) -> Path:
    """The same video with its index first (as streaming sites serve it), so a cut copy still opens."""
    av = pytest.importorskip("av")
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return target


def noisy_detections(gt: np.ndarray, seed: int, width: int, height: int) -> str:
    """Ground truth as a detector would see it: jittered boxes, 10% missed, false positives, scores < 1."""
    rng = np.random.default_rng(seed)
    lines = []
    for frame, _, left, top, w, h, *_ in gt:
        if rng.random() < 0.10:
            continue
        jitter = rng.normal(0.0, 0.03, 4) * [w, h, w, h]
        lines.append((int(frame), left + jitter[0], top + jitter[1], w + jitter[2], h + jitter[3],
                      rng.uniform(0.65, 1.0)))
    for frame in range(1, int(gt[:, 0].max()) + 1):
        if rng.random() < 0.3:  # a spurious box: low score mostly, now and then a confident one
            w, h = rng.uniform(20, 60), rng.uniform(40, 120)
            lines.append((frame, rng.uniform(0, width - w), rng.uniform(0, height - h), w, h,
                          rng.uniform(0.3, 0.8)))
    return "".join(f"{f},-1,{l:.2f},{t:.2f},{w:.2f},{h:.2f},{c:.3f}\n" for f, l, t, w, h, c in lines)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(4,) vs (n, 4) left, top, width, height -> (n,) intersection over union."""
    inter_w = np.clip(np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = inter_w * inter_h
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter)


def identity_purity(dataset: Path, video: str, gt: np.ndarray) -> tuple[float, float, int]:
    """(box-weighted purity, lowest tracklet purity, tracklets) of a built dataset against ground truth."""
    tracks = np.loadtxt(dataset / "tracks" / f"{video}.txt", delimiter=",", ndmin=2)
    box_of = {(int(row[1]), int(row[0])): row[2:6] for row in tracks}  # (track, frame) -> box
    majority, total, lowest = 0, 0, 1.0
    rows = list(csv.DictReader((dataset / "tracklets.csv").open()))
    for row in rows:
        track = int(row["pid"].split(":")[1])
        frames = sorted(int(p.stem) for p in (dataset / row["dir"]).glob("*.jpg"))
        identities = []
        for frame in frames:
            truth = gt[gt[:, 0] == frame]
            overlap = iou(box_of[(track, frame)], truth[:, 2:6])
            identities.append(int(truth[overlap.argmax(), 1]) if overlap.max() > 0 else -1)
        count = Counter(identities).most_common(1)[0][1]
        majority, total, lowest = majority + count, total + len(identities), min(lowest, count / len(identities))
    return majority / total, lowest, len(rows)


@pytest.fixture(scope="module")
def synth_sequence(tmp_path_factory) -> Path:
    """Easy synthetic sports footage: one 640x360 video, 6 players, little occlusion and blur."""
    root = tmp_path_factory.mktemp("synth")
    result = generate("sports", root, videos=1, frames=120, people=6, width=640, height=360, occlusion=0.1,
                      blur=0.1, similarity=0.3, seed=3, workers=1)
    return result.sequences[0].path


# --------------------------------------------------------------------------------------------- video input


def test_sampling_keeps_source_frame_numbers():
    assert Sampling().frame_numbers(5).tolist() == [1, 2, 3, 4, 5]
    assert Sampling(stride=3).frame_numbers(10).tolist() == [1, 4, 7, 10]
    assert Sampling(stride=2, max_frames=3).frame_numbers(100).tolist() == [1, 3, 5]
    with pytest.raises(ConfigError, match="--stride 0"):
        Sampling(stride=0)
    with pytest.raises(ConfigError, match="--max-frames 0"):
        Sampling(max_frames=0)
    assert sampled_recipe(Recipe(max_gap=5), Sampling(stride=2)).max_gap == 11  # 5 sampled frames missing
    assert sampled_recipe(Recipe(max_gap=5), Sampling()).max_gap == 5


def test_inputs_from_files_patterns_and_folders(tmp_path):
    clips = tmp_path / "clips"
    walker_video(clips, "b")
    shutil.copy(clips / "b.mp4", clips / "my clip (1).mp4")
    draw_frames(tmp_path / "frames" / "cam2", walkers(1, 3), 3)
    draw_frames(tmp_path / "seqs" / "dance07" / "img1", walkers(1, 2), 2)
    (tmp_path / "frames" / "cam2" / "notes.txt").write_text("not a frame")

    found = collect_videos([str(clips / "*.mp4"), tmp_path / "frames" / "cam2", tmp_path / "seqs"])
    assert [(v.name, v.is_frame_folder) for v in found] == [("b", False), ("my_clip_1", False), ("cam2", True),
                                                            ("dance07", True)]
    assert [p.name for p in found[2].frame_files] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert [v.name for v in collect_videos([clips, clips / "b.mp4"])] == ["b", "my_clip_1"]  # each file once

    with pytest.raises(DatasetNotFoundError, match="no such file or folder"):
        collect_videos([tmp_path / "missing.mp4"])
    with pytest.raises(DatasetNotFoundError, match="no file matches"):
        collect_videos([str(tmp_path / "*.mkv")])
    with pytest.raises(DatasetFormatError, match="not a video file"):
        collect_videos([tmp_path / "frames" / "cam2" / "notes.txt"])
    (tmp_path / "other").mkdir()
    shutil.copy(clips / "b.mp4", tmp_path / "other" / "b.mp4")
    with pytest.raises(DatasetFormatError, match="both named 'b'"):
        collect_videos([clips / "b.mp4", tmp_path / "other" / "b.mp4"])


def test_decoded_frames_are_opencvs_frames_under_the_same_numbers(tmp_path):
    video = VideoInput("clip", walker_video(tmp_path))
    info = probe(video)
    assert (info.width, info.height, info.n_frames, info.frame_rate) == (WIDTH, HEIGHT, FRAMES, FPS)
    capture = cv2.VideoCapture(str(video.path))  # the decoder of the crop stage
    reference = [capture.read()[1] for _ in range(FRAMES)]
    capture.release()
    decoded = list(read_frames(video, Sampling(stride=7, max_frames=5).frame_numbers(info.n_frames)))
    assert [n for n, _ in decoded] == [1, 8, 15, 22, 29]
    for number, image in decoded:
        assert image.shape == (HEIGHT, WIDTH, 3) and np.array_equal(image, reference[number - 1])


def test_truncated_and_garbage_videos_raise_a_message_naming_the_file(tmp_path):
    good = walker_video(tmp_path / "src")
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])  # index at the end: lost
    streamed = faststart_copy(good, tmp_path / "src" / "streamed.mp4").read_bytes()
    (tmp_path / "cut_streamed.mp4").write_bytes(streamed[: len(streamed) * 6 // 10])  # index first: opens
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))

    for name in ("cut.mp4", "garbage.mp4"):
        with pytest.raises(VideoReadError, match=f"{name}: cannot be opened as a video;.* re-download"):
            probe(VideoInput(name, tmp_path / name))
    with pytest.raises(VideoReadError, match=rf"cut_streamed.mp4: truncated: \d+ of the {FRAMES} frames"):
        probe(VideoInput("cut_streamed", tmp_path / "cut_streamed.mp4"))
    with pytest.raises(VideoReadError, match=f"ends after frame {FRAMES}, before frame 1000"):
        list(read_frames(VideoInput("clip", good), np.array([1, 1000])))


# ------------------------------------------------------------------------------------- detections files


def test_det_txt_is_read_as_tracker_rows_and_checked(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n1,-1,50,20,30,40,0.5\n3,-1,5,6,7,8\n")
    detections = read_detections(path)
    assert sorted(detections) == [1, 3]
    assert np.allclose(detections[1], [[10, 20, 40, 60, 0.9, 0], [50, 20, 80, 60, 0.5, 0]])
    assert detections[3].dtype == np.float32 and np.allclose(detections[3], [[5, 6, 12, 14, 1.0, 0]])
    assert [len(d) for d in DetectionFile(path).detect([1, 2, 3], [None] * 3)] == [2, 0, 1]

    path.write_text("1,-1,10,20,30,40,0.9\n2,-1,10,20,30,40,7.5\n")
    with pytest.raises(DatasetFormatError, match=r"det.txt:2: score 7.5 is outside \[0, 1\]"):
        read_detections(path)
    path.write_text("1,-1,10,20,0,40\n")
    with pytest.raises(DatasetFormatError, match="det.txt:1: box size 0x40 is not positive"):
        read_detections(path)

    (tmp_path / "dets" / "a" / "det").mkdir(parents=True)
    (tmp_path / "dets" / "a" / "det" / "det.txt").write_text("")
    (tmp_path / "dets" / "b.txt").write_text("")
    assert detection_files(tmp_path / "dets", ["a", "b"]) == {"a": tmp_path / "dets" / "a" / "det" / "det.txt",
                                                              "b": tmp_path / "dets" / "b.txt"}
    with pytest.raises(DatasetNotFoundError, match="no detections for video c"):
        detection_files(tmp_path / "dets", ["a", "c"])
    with pytest.raises(ConfigError, match="one file but 2 videos"):
        detection_files(path, ["a", "b"])


# -------------------------------------------------------------------------------------------------- YOLO


def test_random_yolo11n_detects_in_batches_and_restores_thread_counts():
    import torch

    threads = (torch.get_num_threads(), cv2.getNumThreads())
    detector = YoloDetector(DetectorConfig("yolo11n.yaml", conf=0.001, imgsz=64, batch=2, device="cpu"))
    images = [np.random.default_rng(i).integers(0, 255, (72, 96, 3), dtype=np.uint8) for i in range(3)]
    found = detector.detect([1, 2, 3], images)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == threads
    assert len(found) == 3
    for rows in found:  # random weights may find nothing; whatever it finds must be well formed
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 6
        assert np.all(rows[:, 4] >= 0.001) and np.all(rows[:, 4] <= 1) and np.all(rows[:, 5] == 0)
        assert np.all(rows[:, 0] <= rows[:, 2]) and np.all(rows[:, 1] <= rows[:, 3])
        assert np.all(rows[:, :4] >= 0) and np.all(rows[:, [0, 2]] <= 96) and np.all(rows[:, [1, 3]] <= 72)


def test_yolo_path_tracks_a_frame_folder(tmp_path):
    draw_frames(tmp_path / "cam", walkers(2, 6), 6)
    video = collect_videos([tmp_path / "cam"])[0]
    config = FootageConfig(detector=DetectorConfig("yolo11n.yaml", conf=0.001, imgsz=64, batch=4, device="cpu"))
    info = probe(video)
    table = track_video(video, info, YoloDetector(config.detector), config)
    assert table.box.shape == (len(table), 4) and set(table.frame.tolist()) <= set(range(1, 7))
    assert np.all(table.box[:, 2:] > 0)


def test_missing_weights_offline_is_one_line_saying_how_to_supply_them(tmp_path, monkeypatch):
    from ultralytics.utils import SETTINGS

    monkeypatch.chdir(tmp_path)
    if (Path(SETTINGS["weights_dir"]) / "yolo11n.pt").is_file():
        pytest.skip("yolo11n.pt is stored on this machine")
    with pytest.raises(ConfigError) as error:
        load_yolo(DetectorConfig("yolo11n.pt"))
    message = str(error.value)
    assert "\n" not in message and "offline" in message and "--detector /path/to/yolo11n.pt" in message
    with pytest.raises(ConfigError, match="no such file"):
        load_yolo(DetectorConfig(str(tmp_path / "weights" / "best.pt")))
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="broken.pt: cannot be loaded"):
        load_yolo(DetectorConfig(str(tmp_path / "broken.pt")))
    with pytest.raises(ConfigError, match="--imgsz 100"):
        DetectorConfig(imgsz=100)


def test_preserved_threads_undoes_a_change():
    import torch

    before = torch.get_num_threads()
    before_cv2 = cv2.getNumThreads()
    with preserved_threads():
        torch.set_num_threads(1)
        cv2.setNumThreads(0)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (before, before_cv2)


# ---------------------------------------------------------------------------------------------- trackers


def test_trackers_by_name_with_options_and_clear_errors():
    options = parse_tracker_options(["track_buffer=60", "asso_func=giou", "min_conf=0.2"])
    assert options == (("asso_func", "giou"), ("min_conf", 0.2), ("track_buffer", 60))
    tracker = create_tracker(TrackerConfig("ByteTrack", options), frame_rate=15)
    assert (tracker.track_buffer, tracker.buffer_size, tracker.min_conf) == (60, 30, 0.2)  # buffer in 15 fps frames
    assert type(create_tracker(TrackerConfig("ocsort"), 25)).__name__ == "OcSort"

    with pytest.raises(UnknownNameError, match="unknown tracker 'sort2'.*bytetrack"):
        create_tracker(TrackerConfig("sort2"), 25)
    with pytest.raises(ConfigError, match="--tracker-opt buffer: bytetrack has no such option; it takes .*track_b"):
        create_tracker(TrackerConfig(options=(("buffer", 3),)), 25)
    with pytest.raises(ConfigError, match="not key=value"):
        parse_tracker_options(["track_buffer"])
    with pytest.raises(ConfigError, match="--reid-weights is used only by appearance trackers"):
        create_tracker(TrackerConfig(reid_weights=Path("osnet.pt")), 25)
    with pytest.raises(ConfigError) as error:
        create_tracker(TrackerConfig("deepocsort"), 25)
    assert "needs ReID weights: pass --reid-weights PATH" in str(error.value)
    assert "--tracker-opt use_embeddings=false" in str(error.value) and "\n" not in str(error.value)
    assert not create_tracker(TrackerConfig("deepocsort", (("use_embeddings", False),)), 25).generates_embeddings
    with pytest.raises(ConfigError, match="--reid-weights .*missing.pt: no such file"):
        create_tracker(TrackerConfig("strongsort", reid_weights=Path("missing.pt")), 25)


def test_appearance_tracker_embeds_with_local_reid_weights(tmp_path):
    import torch
    from boxmot.reid.core.registry import ReIDModelRegistry

    torch.manual_seed(0)
    model = ReIDModelRegistry.build_model("osnet_x0_25", None, num_classes=4, pretrained=False,
                                          use_gpu=torch.device("cpu"))
    weights = tmp_path / "osnet_x0_25_msmt17.pt"  # boxmot picks the architecture from the file name
    torch.save(model.state_dict(), weights)
    tracker = create_tracker(TrackerConfig("deepocsort", reid_weights=weights), 10)
    image = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    steps = [(f, np.array([[10 + f, 20, 40 + f, 100, 0.9, 0], [120, 30, 150, 110, 0.8, 0]], np.float32), image)
             for f in range(1, 6)]
    table = run_tracker(tracker, steps)
    assert len(np.unique(table.track)) == 2 and len(table) == 10
    assert tracker.last_emb_size == 512  # osnet's embedding: the boxes were embedded by the ReID model


# ------------------------------------------------------------------------------------------------ building


def test_bytetrack_on_noisy_detections_gives_pure_tracklets(synth_sequence, tmp_path, capsys):
    gt = np.loadtxt(synth_sequence / "gt" / "gt.txt", delimiter=",")
    (tmp_path / "det.txt").write_text(noisy_detections(gt, seed=0, width=640, height=360))
    footage = FootageConfig(detections=tmp_path / "det.txt")
    out = tmp_path / "ds"
    result = build_from_videos("sports", [synth_sequence], out, footage, progress=False, recipe=TEST_ONLY)

    purity, lowest, tracklets = identity_purity(out, synth_sequence.name, gt)
    with capsys.disabled():
        print(f"\nidentity purity {purity:.4f} (lowest tracklet {lowest:.4f}) over {tracklets} tracklets")
    assert tracklets >= 6 and purity >= 0.95
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identities_verified"] is False and manifest["failures"] == []
    assert manifest["tracking"]["tracker"] == "bytetrack" and manifest["source_layout"] == "raw-footage"
    assert len(load(out).query) == result.counts["tracklets_query"] > 0


def test_resumed_build_reuses_tracks_and_reaches_the_same_fingerprint(synth_sequence, tmp_path, monkeypatch):
    import builders.track as track_module

    gt = np.loadtxt(synth_sequence / "gt" / "gt.txt", delimiter=",")
    (tmp_path / "det.txt").write_text(noisy_detections(gt, seed=1, width=640, height=360))
    footage = FootageConfig(detections=tmp_path / "det.txt", sampling=Sampling(stride=2, max_frames=50))
    first = build_from_videos("sports", [synth_sequence / "img1"], tmp_path / "ds", footage, progress=False,
                              recipe=TEST_ONLY)
    tracks = np.loadtxt(tmp_path / "ds" / "tracks" / f"{synth_sequence.name}.txt", delimiter=",")
    assert set(tracks[:, 0].astype(int).tolist()) <= set(range(1, 100, 2))  # source numbers of sampled frames
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["recipe"]["params"]["max_gap"] == 11 and manifest["tracking"]["stride"] == 2

    def no_tracking(*args, **kwargs):
        raise AssertionError("tracks were recomputed")

    monkeypatch.setattr(track_module, "track_video", no_tracking)
    again = build_from_videos("sports", [synth_sequence / "img1"], tmp_path / "ds", footage, progress=False,
                              recipe=TEST_ONLY)
    assert again.fingerprint == first.fingerprint and again.reused == (synth_sequence.name,)


def test_unreadable_videos_are_listed_and_the_others_built(tmp_path):
    good = walker_video(tmp_path / "in", "good")
    data = good.read_bytes()
    (tmp_path / "in" / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "in" / "garbage.avi").write_bytes(np.random.default_rng(1).bytes(4000))
    dets = tmp_path / "dets"
    dets.mkdir()
    for name in ("good", "cut", "garbage"):
        (dets / f"{name}.txt").write_text(det_text(walkers(3, FRAMES)))

    result = build_from_videos("sports", [tmp_path / "in"], tmp_path / "ds", FootageConfig(detections=dets),
                               progress=False, recipe=TEST_ONLY)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert [f["video"] for f in manifest["failures"]] == ["cut", "garbage"]
    assert all("cannot be opened as a video" in f["error"] for f in manifest["failures"])
    assert result.built == ("good",) and [s["video"] for s in manifest["sources"]] == ["good"]
    assert result.counts["crops"] > 0 and result.counts["sequences_skipped"] == 2
    assert sorted(p.name for p in (tmp_path / "ds" / "tracks").iterdir()) == ["good.json", "good.txt"]

    (dets / "good.txt").write_text(det_text(walkers(3, FRAMES + 5)))  # detections of a longer video
    with pytest.raises(DatasetFormatError, match="detections reach frame 65 but .*good.mp4 has 60 frames"):
        build_from_videos("sports", [good], tmp_path / "ds2", FootageConfig(detections=dets), progress=False)
    with pytest.raises(DatasetFormatError, match="no video could be read: .*cut.mp4"):
        build_from_videos("sports", [tmp_path / "in" / "cut.mp4"], tmp_path / "ds3", FootageConfig(detections=dets),
                          progress=False)


def test_videos_tracked_in_parallel_give_the_same_dataset(tmp_path):
    for name in ("a", "b"):
        walker_video(tmp_path / "in", name)
    (tmp_path / "in" / "garbage.avi").write_bytes(np.random.default_rng(1).bytes(4000))
    dets = tmp_path / "dets"
    dets.mkdir()
    for name in ("a", "b", "garbage"):
        (dets / f"{name}.txt").write_text(det_text(walkers(3, FRAMES)))
    footage = FootageConfig(detections=dets)
    one = build_from_videos("sports", [tmp_path / "in"], tmp_path / "one", footage, workers=1, progress=False)
    two = build_from_videos("sports", [tmp_path / "in"], tmp_path / "two", footage, workers=2, progress=False)
    assert two.fingerprint == one.fingerprint and two.built == one.built == ("a", "b")
    failures = [json.loads((tmp_path / d / "manifest.json").read_text())["failures"] for d in ("one", "two")]
    assert [f["video"] for f in failures[1]] == [f["video"] for f in failures[0]] == ["garbage"]


def test_cli_builds_raw_footage_end_to_end(tmp_path, capsys):
    clip = walker_video(tmp_path / "clips", "match1")
    draw_frames(tmp_path / "clips" / "match2", walkers(3, FRAMES), FRAMES)
    dets = tmp_path / "dets"
    dets.mkdir()
    for name in ("match1", "match2"):
        (dets / f"{name}.txt").write_text(det_text(walkers(3, FRAMES)))
    out = tmp_path / "ds"
    args = ["build", "sports", "--videos", str(clip), str(tmp_path / "clips" / "match2"), "--detections", str(dets),
            "--fps", "10", "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    assert "built 2 videos" in capsys.readouterr().out
    dataset = load(out)
    assert len(dataset.train) > 0 and len(dataset.query) == 3 and len(dataset.gallery) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identities_verified"] is False and manifest["tracking"]["detections"] == str(dets)

    assert cli.main(["build", "sports", "--videos", str(clip), "--out", str(tmp_path / "x"), "--tracker", "sort2",
                     "--detections", str(dets)]) == 2
    assert "unknown tracker 'sort2'" in capsys.readouterr().err
    assert cli.main(["build", "sports", "--videos", str(clip), "--out", str(tmp_path / "y"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "--detector yolo11n.pt" in error and "offline" in error
    assert cli.main(["build", "sports", "--mot-root", str(tmp_path), "--videos", str(clip)]) == 2
    assert "--mot-root and --videos both given" in capsys.readouterr().err
