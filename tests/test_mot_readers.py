"""MOT readers: each public layout, hand-made small, and each malformed input named by file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from builders.mot import detect_layout, read_gt, read_mot_root, read_sequence
from vreid_bench.errors import DatasetFormatError, DatasetNotFoundError

WIDTH, HEIGHT, FPS = 320, 180, 10
COLOURS = [(220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 200, 30), (200, 60, 200), (40, 200, 200)]


def walkers(people: int, frames: int, first_id: int = 1) -> list[tuple[int, int, float, float, float, float]]:
    """Ground-truth rows of people side by side, never overlapping or near the border, 30x80 px each."""
    rows = []
    for person in range(people):
        for frame in range(1, frames + 1):
            left = 12 + person * 50 + (frame % 5)
            top = 40 + (frame % 7)
            rows.append((frame, first_id + person, float(left), float(top), 30.0, 80.0))
    return rows


def gt_text(rows, extra: str = "1,1,1") -> str:
    return "".join(f"{f},{i},{l:g},{t:g},{w:g},{h:g},{extra}\n" for f, i, l, t, w, h in rows)


def draw_frames(image_dir: Path, rows, frames: int, digits: int = 6, skip: tuple[int, ...] = ()) -> None:
    """One JPEG per frame with each person a flat rectangle of their own colour."""
    image_dir.mkdir(parents=True, exist_ok=True)
    by_frame: dict[int, list] = {}
    for row in rows:
        by_frame.setdefault(row[0], []).append(row)
    for frame in range(1, frames + 1):
        if frame in skip:
            continue
        image = Image.new("RGB", (WIDTH, HEIGHT), (90, 110, 90))
        draw = ImageDraw.Draw(image)
        for _, track, left, top, w, h in by_frame.get(frame, []):
            draw.rectangle([left, top, left + w - 1, top + h - 1], fill=COLOURS[track % len(COLOURS)])
        image.save(image_dir / f"{frame:0{digits}d}.jpg", quality=90)


def write_sequence(seq_dir: Path, rows, frames: int, digits: int = 6, gt: str | None = None, with_gt: bool = True,
                   skip: tuple[int, ...] = (), fps: int = FPS) -> Path:
    """A MOTChallenge-family sequence folder: img1/, gt/gt.txt, seqinfo.ini."""
    seq_dir.mkdir(parents=True, exist_ok=True)
    (seq_dir / "seqinfo.ini").write_text(
        f"[Sequence]\nname={seq_dir.name}\nimDir=img1\nframeRate={fps}\nseqLength={frames}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n"
    )
    draw_frames(seq_dir / "img1", rows, frames, digits, skip)
    if with_gt:
        (seq_dir / "gt").mkdir(exist_ok=True)
        (seq_dir / "gt" / "gt.txt").write_text(gt if gt is not None else gt_text(rows))
    return seq_dir


def write_sportsmot(root: Path, splits: dict[str, list[str]], people: int = 3, frames: int = 40) -> Path:
    """SportsMOT: dataset/{split}/<seq>/ and splits_txt/{split}.txt; test sequences have no gt."""
    (root / "splits_txt").mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        (root / "splits_txt" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        for name in names:
            write_sequence(root / "dataset" / split / name, walkers(people, frames), frames, with_gt=split != "test")
    return root


def write_dancetrack(root: Path, splits: dict[str, list[str]], people: int = 3, frames: int = 40) -> Path:
    """DanceTrack: {split}/<seq>/ with 8-digit frame names and {split}_seqmap.txt with a name header."""
    root.mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        (root / f"{split}_seqmap.txt").write_text("name\n" + "".join(f"{n}\n" for n in names))
        for name in names:
            write_sequence(root / split / name, walkers(people, frames, first_id=0), frames, digits=8,
                           with_gt=split != "test")
    return root


def write_video(path: Path, rows, frames: int) -> Path:
    """An MP4 with its gt beside it as <stem>.gt.txt."""
    cv2 = pytest.importorskip("cv2")
    staging = path.parent / f".{path.stem}_frames"
    draw_frames(staging, rows, frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for frame in range(1, frames + 1):
        writer.write(cv2.imread(str(staging / f"{frame:06d}.jpg")))
    writer.release()
    path.with_name(path.stem + ".gt.txt").write_text(gt_text(rows))
    return path


# ------------------------------------------------------------------------------------------------- layouts


def test_sequence_folder_is_read_with_geometry_and_sorted_boxes(tmp_path):
    rows = walkers(2, 30)
    seq = read_sequence(write_sequence(tmp_path / "seqA", rows[::-1], 30))
    assert (seq.name, seq.frame_rate, seq.width, seq.height, seq.n_frames) == ("seqA", 10.0, WIDTH, HEIGHT, 30)
    assert len(seq.gt) == 60
    assert np.all(np.diff(seq.gt.track) >= 0)
    first = seq.gt.track == 1
    assert np.array_equal(seq.gt.frame[first], np.arange(1, 31))
    assert np.allclose(seq.gt.box[0], [12 + 1, 40 + 1, 30, 80])
    assert seq.frame_path(7) == tmp_path / "seqA" / "img1" / "000007.jpg"


def test_sportsmot_root_uses_split_lists_and_skips_test_without_gt(tmp_path):
    root = write_sportsmot(tmp_path / "sportsmot_publish", {"train": ["v_a_c001"], "val": ["v_b_c002"],
                                                             "test": ["v_c_c003"]}, frames=20)
    source = read_mot_root(root)
    assert source.layout == "sportsmot"
    assert [(s.name, s.split) for s in source.sequences] == [("v_a_c001", "train"), ("v_b_c002", "val")]
    assert len(source.notes) == 1 and "v_c_c003" in source.notes[0]
    assert read_mot_root(root / "dataset").layout == "sportsmot"
    assert read_mot_root(tmp_path).layout == "sportsmot"  # one level above the root


def test_dancetrack_root_reads_seqmaps_and_eight_digit_frames(tmp_path):
    root = write_dancetrack(tmp_path / "dancetrack", {"train": ["dancetrack0001"], "val": ["dancetrack0002"],
                                                      "test": ["dancetrack0003"]}, frames=20)
    source = read_mot_root(root)
    assert source.layout == "dancetrack"
    assert [(s.name, s.split) for s in source.sequences] == [("dancetrack0001", "train"), ("dancetrack0002", "val")]
    assert source.sequences[0].gt.track.min() == 0  # ids may start at 0
    assert source.sequences[0].frame_path(3).name == "00000003.jpg"


def test_motchallenge_root_keeps_pedestrians_and_reads_duplicated_videos_once(tmp_path):
    rows = walkers(2, 20)
    lines = gt_text(rows, "1,1,0.9")
    lines += "5,7,100,40,30,80,0,1,1.0\n"  # conf flag 0: not to be used
    lines += "6,8,100,40,30,80,1,3,1.0\n"  # class 3 (car): not a pedestrian
    for detector in ("DPM", "FRCNN"):
        write_sequence(tmp_path / "MOT17" / "train" / f"MOT17-02-{detector}", rows, 20, gt=lines)
    write_sequence(tmp_path / "MOT17" / "test" / "MOT17-01-DPM", rows, 20, with_gt=False)
    source = read_mot_root(tmp_path / "MOT17")
    assert source.layout == "motchallenge"
    assert [s.name for s in source.sequences] == ["MOT17-02-DPM"]
    assert [s.split for s in source.sequences] == [None]
    assert sorted(set(source.sequences[0].gt.track.tolist())) == [1, 2]
    assert len(source.notes) == 2


def test_video_with_gt_beside_it(tmp_path):
    rows = walkers(2, 20)
    video = write_video(tmp_path / "clips" / "clip.mp4", rows, 20)
    for path in (video, video.parent):
        source = read_mot_root(path)
        assert source.layout == "videos"
        (seq,) = source.sequences
        assert (seq.name, seq.n_frames, seq.width, seq.height, len(seq.gt)) == ("clip", 20, WIDTH, HEIGHT, 40)
        assert seq.video_file == video


def test_unrecognised_root_says_which_layouts_exist(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="SportsMOT root"):
        read_mot_root(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_mot_root(tmp_path / "nowhere")
    assert detect_layout(tmp_path / "empty") is None


# -------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("line", "message"), [
    ("3,1,10,10,30", "expected 6 to 10 comma-separated fields, found 5"),
    ("3,1,ten,10,30,80,1,1,1", "left 'ten' is not a number"),
    ("3,1,10,10,-30,80,1,1,1", "negative box size"),
    ("31,1,10,10,30,80,1,1,1", "frame 31 is outside 1..30"),
    ("2.5,1,10,10,30,80,1,1,1", "frame '2.5' is not a whole number"),
    ("1,1,13,41,30,80,1,1,1", "track 1 already has a box in frame 1"),
])
def test_malformed_gt_line_is_named_by_file_and_line(tmp_path, line, message):
    good = gt_text(walkers(1, 30))
    seq_dir = write_sequence(tmp_path / "seq", [], 30, gt=good + line + "\n")
    with pytest.raises(DatasetFormatError) as error:
        read_sequence(seq_dir)
    assert f"{seq_dir / 'gt' / 'gt.txt'}:31:" in str(error.value)
    assert message in str(error.value)


def test_missing_seqinfo_is_named(tmp_path):
    seq_dir = write_sequence(tmp_path / "seq", walkers(1, 10), 10)
    (seq_dir / "seqinfo.ini").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"seq/seqinfo\.ini is missing"):
        read_sequence(seq_dir)


def test_frame_referenced_by_gt_but_absent_from_img1_names_the_line(tmp_path):
    rows = walkers(1, 10)
    seq_dir = write_sequence(tmp_path / "seq", rows, 10, skip=(4,))
    with pytest.raises(DatasetFormatError) as error:
        read_sequence(seq_dir)
    assert f"{seq_dir / 'gt' / 'gt.txt'}:4: frame 4 has boxes but no image" in str(error.value)


def test_listed_sequence_missing_names_the_list_line(tmp_path):
    root = write_sportsmot(tmp_path / "s", {"train": ["v_a_c001"]}, frames=10)
    (root / "splits_txt" / "val.txt").write_text("v_zz_c009\n")
    with pytest.raises(DatasetNotFoundError, match=r"val\.txt:1: sequence v_zz_c009 is listed"):
        read_mot_root(root)


def test_read_gt_returns_line_numbers_of_kept_rows(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("2,5,1,1,10,20,1,1,1\n\n1,5,1,1,10,20,0,1,1\n1,4,1,1,10,20,1,1,1\n")
    table, lines = read_gt(path, 2)
    assert table.track.tolist() == [4, 5] and table.frame.tolist() == [1, 2]
    assert lines.tolist() == [4, 1]
