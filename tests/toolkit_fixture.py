"""A tiny toolkit dataset written by hand, laid out as ``vreid build`` writes it (DESIGN.md).

Tests that need a dataset directory call :func:`make_toolkit_dataset`; it depends on nothing but Pillow, so
the loaders, captioners and contact sheet can be tested without the builder. Layout::

    <root>/<name>/manifest.json, tracklets.csv, attributes/<video>.json,
                  crops/<video>/<track id>/<tracklet_id>/<frame>.jpg

Every identity has one tracklet per pseudo-camera. The first video is the training split; in the others each
identity's camera-0 tracklet is the query and the rest are gallery.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

TEAMS = (("home", "red", (200, 30, 30)), ("away", "blue", (30, 60, 200)))
HAIR = (("short black hair", (20, 20, 20)), ("long blond hair", (230, 200, 90)), ("curly brown hair", (110, 70, 30)),
        ("buzzed red hair", (190, 70, 20)))
SKIN = (("light skin", (240, 205, 180)), ("dark skin", (110, 70, 50)), ("medium skin", (190, 140, 100)))
SHOES = (("white shoes", (250, 250, 250)), ("black shoes", (10, 10, 10)), ("green shoes", (30, 160, 60)))
SOCKS = ("black socks", "white socks", "grey socks", "yellow socks")
BUILDS = ("slim build", "stocky build", "tall build")
ACCESSORIES = ((), ("a white headband",), ("a black wristband", "a knee sleeve"))
JERSEY_NUMBERS = (4, 7, 9, 12, 23, 31, 45, 58)
COSTUME = ("a black leotard", (25, 25, 25))


@dataclass(frozen=True)
class FixtureIdentity:
    """What one identity looks like: its sheet entry and the colours its crops are drawn with."""

    track_id: str
    attributes: dict[str, object]
    torso_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    skin_rgb: tuple[int, int, int]
    shoes_rgb: tuple[int, int, int]


def video_name(kind: str, index: int) -> str:
    return f"v_fixture_{index:03d}" if kind == "sports" else f"dancetrack{index + 1:04d}"


def make_identity(kind: str, video_index: int, person: int) -> FixtureIdentity:
    """Attributes that differ between the identities of one video (for up to three per video)."""
    k = person + video_index
    hair, hair_rgb = HAIR[k % len(HAIR)]
    skin, skin_rgb = SKIN[k % len(SKIN)]
    shoes, shoes_rgb = SHOES[k % len(SHOES)]
    attributes: dict[str, object] = {}
    if kind == "sports":
        team, color, torso_rgb = TEAMS[person % len(TEAMS)]
        attributes.update(team=team, jersey_color=color, jersey_number=JERSEY_NUMBERS[k % len(JERSEY_NUMBERS)])
    else:
        costume, torso_rgb = COSTUME
        attributes["costume"] = costume
    attributes.update(hair=hair, skin_tone=skin, shoes=shoes, socks=SOCKS[k % len(SOCKS)],
                      build=BUILDS[k % len(BUILDS)], accessories=list(ACCESSORIES[k % len(ACCESSORIES)]))
    return FixtureIdentity(str(person + 1), attributes, torso_rgb, hair_rgb, skin_rgb, shoes_rgb)


def draw_crop(identity: FixtureIdentity, frame: int, size: tuple[int, int]) -> bytes:
    """A JPEG of a stick figure in the identity's colours; the background shade moves with the frame."""
    height, width = size
    shade = 90 + (frame * 11) % 60
    image = Image.new("RGB", (width, height), (shade, shade + 20, shade))
    draw = ImageDraw.Draw(image)
    cx = width // 2
    head = max(2, height // 10)
    draw.ellipse((cx - head, 2, cx + head, 2 + 2 * head), fill=identity.skin_rgb)
    draw.rectangle((cx - head, 2, cx + head, 2 + head // 2), fill=identity.hair_rgb)
    draw.rectangle((cx - width // 4, 3 + 2 * head, cx + width // 4, height // 2 + head), fill=identity.torso_rgb)
    draw.rectangle((cx - width // 5, height // 2 + head, cx + width // 5, height - 6), fill=(60, 60, 70))
    draw.rectangle((cx - width // 4, height - 6, cx + width // 4, height - 1), fill=identity.shoes_rgb)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_toolkit_dataset(root: str | Path, videos: int = 2, ids_per_video: int = 3, cameras: int = 2,
                         frames: int = 6, kind: str = "sports", name: str | None = None,
                         crop_size: tuple[int, int] = (64, 32), attributes: bool = True) -> Path:
    """Write a dataset directory under ``root`` and return its path.

    ``crop_size`` is (height, width). ``attributes=False`` leaves out ``attributes/`` (real footage has none).
    """
    if kind not in ("sports", "dance"):
        raise ValueError(f"kind must be sports or dance, not {kind!r}")
    name = name or f"fixture-{kind}"
    out = Path(root) / name
    gap = 5
    rows: list[dict[str, object]] = []
    digest = hashlib.sha256()
    for v in range(videos):
        video = video_name(kind, v)
        split = "train" if v == 0 else "test"
        people = [make_identity(kind, v, p) for p in range(ids_per_video)]
        for person in people:
            for cam in range(cameras):
                first = 1 + cam * (frames + gap)
                tracklet_id = f"{video}_t{person.track_id}_c{cam}"
                directory = Path("crops") / video / person.track_id / tracklet_id
                (out / directory).mkdir(parents=True)
                for frame in range(first, first + frames):
                    data = draw_crop(person, frame, crop_size)
                    (out / directory / f"{frame:06d}.jpg").write_bytes(data)
                    digest.update(data)
                row_split = split if split == "train" else ("query" if cam == 0 else "gallery")
                rows.append({"tracklet_id": tracklet_id, "pid": f"{video}:{person.track_id}", "camid": cam,
                             "split": row_split, "video": video, "first_frame": first,
                             "last_frame": first + frames - 1, "n_frames": frames, "dir": directory.as_posix()})
        if attributes:
            sheet = {"video": video, "kind": kind, "seed": 0,
                     "difficulty": {"similarity": 0.5, "occlusion": 0.0, "blur": 0.0},
                     "identities": {p.track_id: p.attributes for p in people}}
            (out / "attributes").mkdir(parents=True, exist_ok=True)
            (out / "attributes" / f"{video}.json").write_text(json.dumps(sheet, indent=2))

    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "tracklets.csv").write_text(table.getvalue())
    digest.update(table.getvalue().encode())

    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "query", "gallery")}
    manifest = {
        "name": name,
        "format_version": 1,
        "kind": kind,
        "recipe": {"name": "vreid-build-1", "params": {"segments": cameras, "gap_s": 1.0}},
        "sources": [{"video": video_name(kind, v), "split": "train" if v == 0 else "val",
                     "path": f"synthetic/{video_name(kind, v)}", "frames": cameras * (frames + gap), "fps": 25,
                     "size": [crop_size[1] * 8, crop_size[0] * 4]} for v in range(videos)],
        "licence": "hand-made test fixture; no source footage",
        "counts": {"identities": videos * ids_per_video, "tracklets": len(rows), **counts},
        "fingerprint": digest.hexdigest(),
        "default_protocol": "video-scope",
        "identities_verified": True,
        "failures": [],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out


def _identity_frame(rng: np.random.Generator, colour: np.ndarray, camera: int, H: int, W: int) -> np.ndarray:
    background = np.array([[200, 60, 60], [60, 60, 200]][camera])
    frame = background + rng.normal(0, 20, size=(H, W, 3))
    frame[H // 4: 3 * H // 4, W // 4: 3 * W // 4] = colour + rng.normal(0, 10, size=(H // 2, W // 2, 3))
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_identity_dataset(root: Path, H: int, W: int, train_ids: int = 6, test_ids: int = 6, cameras: int = 2, per_camera: int = 2,
                  frames: int = 8, seed: int = 0, name: str = "synthetic") -> Path:
    """A toolkit dataset with identity signal in a small torso patch over a camera-coloured background.

    An untrained model ranks same-camera strangers first; a trained one learns to look at the patch. PNG crops
    of ``H``×``W``; each test identity's first camera-0 tracklet is the query.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(train_ids + test_ids, 3))
    out = root / name
    rows = []
    for pid in range(train_ids + test_ids):
        video = "v0" if pid < train_ids else "v1"
        for cam in range(cameras):
            for k in range(per_camera):
                tracklet_id = f"p{pid}c{cam}k{k}"
                folder = Path("crops") / video / str(pid) / tracklet_id
                (out / folder).mkdir(parents=True)
                for f in range(frames):
                    Image.fromarray(_identity_frame(rng, colours[pid], cam, H, W)).save(out / folder / f"{f:06d}.png")
                split = "train" if pid < train_ids else ("query" if cam == 0 and k == 0 else "gallery")
                rows.append({"tracklet_id": tracklet_id, "pid": f"{video}:{pid}", "camid": cam, "split": split,
                             "video": video, "first_frame": 0, "last_frame": frames - 1, "n_frames": frames,
                             "dir": folder.as_posix()})
    with (out / "tracklets.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (out / "captions.jsonl").open("w") as handle:
        for row in rows[:3]:
            handle.write(json.dumps({"tracklet_id": row["tracklet_id"], "caption": f"person {row['pid']}"}) + "\n")
    manifest = {"name": name, "format_version": 1, "default_protocol": "gallery-only", "fingerprint": f"{name}-{seed}"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
