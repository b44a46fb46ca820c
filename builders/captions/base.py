"""The captioner interface, the caption cache and ``captions.jsonl``.

A captioner turns a few frames of a tracklet (and, for synthetic footage, the identity's attribute sheet) into
one sentence. Captions are cached by (tracklet_id, captioner, prompt_id): a re-run only captions what is
missing, and a new prompt or template version is a new cache key rather than a silent overwrite.

``captions.jsonl`` is rewritten whole, atomically (temp file + ``os.replace``), at checkpoints every few seconds
and at the end, so a reader never sees a torn file and a killed run loses at most one checkpoint interval. A
torn last line left by some other writer is dropped on read and the file repaired. The loader takes the last
line of each tracklet, so the rows of the most recent command are written last: they are the current captions.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import toolkit
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, UnknownNameError
from vreid_bench.io import atomic_write_text

CAPTIONS_FILE = "captions.jsonl"
ATTRIBUTES_DIR = "attributes"
IMPORT_CAPTIONER = "import"
IMPORT_PROMPT_ID = "reviewed"
CORE_FIELDS = ("tracklet_id", "caption", "captioner", "prompt_id", "reviewed")

# Captioner name -> "module:class"; model captioners join here by name.
CAPTIONERS: Mapping[str, str] = MappingProxyType({
    "template": "builders.captions.template:TemplateCaptioner",
    "mllm": "builders.captions.mllm:MLLMCaptioner",  # the default multimodal model
})
# Any other name that is a hub model id (``org/name``) or a local folder is captioned by this class.
MODEL_CAPTIONER = "builders.captions.mllm:MLLMCaptioner"

T = TypeVar("T")
CacheKey = tuple[str, str, str]  # (tracklet_id, captioner, prompt_id)


def short_hash(text: str, length: int = 10) -> str:
    """A prompt id: short, stable across processes (unlike ``hash``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def evenly_spaced(items: Sequence[T], k: int) -> list[T]:
    """``k`` items spread over the whole sequence, first and last included (all of them when ``k >= len``)."""
    n = len(items)
    if k >= n:
        return list(items)
    if k <= 0:
        return []
    if k == 1:
        return [items[(n - 1) // 2]]
    return [items[int(i * (n - 1) / (k - 1) + 0.5)] for i in range(k)]  # round half up, not to even


@dataclass(frozen=True)
class AttributeSheet:
    """The attribute sheet of one synthetic video: who is in it and what each identity visibly wears."""

    video: str
    kind: str | None
    identities: Mapping[str, Mapping[str, object]]


@dataclass(frozen=True)
class CaptionRequest:
    """What a captioner may look at for one tracklet.

    ``frames`` are a few evenly spaced crops. ``attributes`` is the identity's entry of its video's attribute
    sheet and ``sheet`` the whole sheet (the other identities a caption could be confused with); both are None
    for real footage, which has no sheets.
    """

    tracklet_id: str
    video: str
    track_id: str
    frames: tuple[str, ...]
    attributes: Mapping[str, object] | None = None
    sheet: AttributeSheet | None = None


@dataclass(frozen=True)
class Caption:
    """A caption and any extra fields its captioner records in the row (e.g. which attributes are wrong)."""

    text: str
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(set(self.extra) & set(CORE_FIELDS))
        if clash:
            raise ValueError(f"caption extra fields {clash} would overwrite the row's own fields")


class Captioner(ABC):
    """One way of captioning tracklets; ``prompt_id`` changes whenever its output for the same input may."""

    name: str
    prompt_id: str
    frames_per_request: int = 4

    @abstractmethod
    def caption_batch(self, requests: Sequence[CaptionRequest]) -> list[str]:
        """One caption per request, in order."""

    def describe_batch(self, requests: Sequence[CaptionRequest]) -> list[Caption]:
        """Captions with extra row fields; captioners that record nothing extra need not override it."""
        return [Caption(text) for text in self.caption_batch(requests)]

    def check_requests(self, requests: Sequence[CaptionRequest]) -> None:
        """Raise a user error before any work starts if these requests cannot be captioned."""


def names_a_model(name: str) -> bool:
    """Whether an unregistered captioner name means a transformers model: a hub id ``org/name`` or a folder."""
    return "/" in name or Path(name).expanduser().is_dir()


def create_captioner(name: str, **options: object) -> Captioner:
    """Build a captioner by name; options go to its constructor and are checked against it.

    A name that is not registered but is a model id or a local folder builds the model captioner for it.
    """
    target = CAPTIONERS.get(name.lower())
    if target is None and names_a_model(name):
        target, options = MODEL_CAPTIONER, {"model": name, **options}
    if target is None:
        raise UnknownNameError(
            f"unknown captioner {name!r}: use one of {', '.join(CAPTIONERS)}, a transformers model id (org/name), "
            "a local model folder, or `--import FILE` for reviewed captions"
        )
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"captioner {name!r} takes no option {', '.join(unknown)}; its options are: {', '.join(accepted) or 'none'}"
        )
    return cls(**options)


# --- captions.jsonl -------------------------------------------------------------------------------------------


class CaptionStore:
    """The rows of ``captions.jsonl`` keyed by (tracklet_id, captioner, prompt_id), in file order."""

    def __init__(self, path: Path, rows: dict[CacheKey, dict[str, object]], dropped_torn_line: bool) -> None:
        self.path = path
        self.rows = rows
        self.dropped_torn_line = dropped_torn_line

    @classmethod
    def open(cls, dataset_dir: Path) -> CaptionStore:
        """Read the file; a torn last line (an interrupted append) is dropped, a bad line elsewhere is an error."""
        path = dataset_dir / CAPTIONS_FILE
        rows: dict[CacheKey, dict[str, object]] = {}
        if not path.is_file():
            return cls(path, rows, False)
        lines = path.read_text(encoding="utf-8").splitlines()
        numbered = [(no, line) for no, line in enumerate(lines, start=1) if line.strip()]
        dropped = False
        for index, (line_no, line) in enumerate(numbered):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if index == len(numbered) - 1:
                    dropped = True
                    break
                raise DatasetFormatError(
                    f"{path}:{line_no}: not a JSON line ({exc}); fix or delete that line, then re-run `vreid caption`"
                ) from None
            if not isinstance(row, dict) or not isinstance(row.get("tracklet_id"), str) \
                    or not isinstance(row.get("caption"), str):
                raise DatasetFormatError(
                    f"{path}:{line_no}: expected an object with string tracklet_id and caption; "
                    "fix or delete that line, then re-run `vreid caption`"
                )
            key = (row["tracklet_id"], str(row.get("captioner", "")), str(row.get("prompt_id", "")))
            rows.pop(key, None)  # a repeated key: the later line wins, as in the loader
            rows[key] = row
        return cls(path, rows, dropped)

    def has(self, key: CacheKey) -> bool:
        return key in self.rows

    def put(self, row: dict[str, object]) -> None:
        key = (str(row["tracklet_id"]), str(row["captioner"]), str(row["prompt_id"]))
        self.rows.pop(key, None)
        self.rows[key] = row

    def save(self, current: tuple[str, str] | None = None, order: Sequence[str] = ()) -> None:
        """Write atomically; rows of the ``current`` (captioner, prompt_id) go last, in tracklet ``order``."""
        rank = {tracklet_id: i for i, tracklet_id in enumerate(order)}
        others = [row for key, row in self.rows.items() if key[1:] != current]
        latest = [row for key, row in self.rows.items() if key[1:] == current]
        latest.sort(key=lambda row: rank.get(str(row["tracklet_id"]), len(rank)))
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in others + latest)
        atomic_write_text(self.path, text)


def caption_row(tracklet_id: str, caption: Caption, captioner: str, prompt_id: str,
                reviewed: bool = False) -> dict[str, object]:
    text = caption.text.strip()
    if not text:
        raise ValueError(f"captioner {captioner!r} returned an empty caption for tracklet {tracklet_id!r}")
    row: dict[str, object] = {"tracklet_id": tracklet_id, "caption": text, "captioner": captioner,
                              "prompt_id": prompt_id, "reviewed": reviewed}
    row.update(caption.extra)
    return row


# --- requests from a dataset ----------------------------------------------------------------------------------


def read_attribute_sheet(dataset_dir: Path, video: str) -> AttributeSheet | None:
    """The sheet ``attributes/<video>.json`` copied there by the builder, or None (real footage has none)."""
    path = dataset_dir / ATTRIBUTES_DIR / f"{video}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path} is not valid JSON ({exc}); rebuild the dataset") from None
    identities = data.get("identities") if isinstance(data, dict) else None
    if not isinstance(identities, dict) or not all(isinstance(v, dict) for v in identities.values()):
        raise DatasetFormatError(
            f"{path}: expected {{\"identities\": {{track id: {{attribute: phrase}}}}}}; rebuild the dataset"
        )
    kind = data.get("kind")
    return AttributeSheet(video=str(data.get("video", video)), kind=str(kind) if kind else None,
                          identities={str(k): v for k, v in identities.items()})


def track_id_of(pid_name: str) -> str:
    """``<video>:<track id>`` -> track id (the whole name where it is not video-scoped)."""
    return pid_name.split(":", 1)[1] if ":" in pid_name else pid_name


def all_tracklets(dataset: VideoReIDDataset) -> tuple[Tracklet, ...]:
    return (*dataset.train, *dataset.query, *dataset.gallery)


def caption_requests(dataset_dir: str | Path, frames_per_request: int = 4) -> list[CaptionRequest]:
    """One request per tracklet of the dataset (train, query, gallery), in that order."""
    root = Path(dataset_dir)
    dataset = toolkit.load(root)
    sheets: dict[str, AttributeSheet | None] = {}
    requests = []
    for tracklet in all_tracklets(dataset):
        video = str(tracklet.video)
        if video not in sheets:
            sheets[video] = read_attribute_sheet(root, video)
        sheet = sheets[video]
        track_id = track_id_of(dataset.pid_names[tracklet.pid])
        requests.append(CaptionRequest(
            tracklet_id=str(tracklet.tracklet_id), video=video, track_id=track_id,
            frames=tuple(evenly_spaced(tracklet.frames, frames_per_request)),
            attributes=sheet.identities.get(track_id) if sheet else None, sheet=sheet,
        ))
    return requests


# --- captioning and import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionSummary:
    captioned: int
    cached: int
    total: int
    captioner: str
    prompt_id: str
    dropped_torn_line: bool = False


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _open_repaired(root: Path) -> CaptionStore:
    """Open the store, rewriting the file at once if its last line was torn so the loader can read it."""
    toolkit.read_manifest(root)  # a path that is not a dataset fails here, with the loader's own message
    store = CaptionStore.open(root)
    if store.dropped_torn_line:
        store.save()
    return store


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def caption_dataset(dataset_dir: str | Path, captioner: Captioner, batch_size: int = 8, overwrite: bool = False,
                    progress: bool = True, checkpoint_seconds: float = 5.0) -> CaptionSummary:
    """Caption every tracklet of a dataset that has no caption from this captioner and prompt yet.

    ``overwrite`` recaptions them all. The file is checkpointed every ``checkpoint_seconds`` so an interrupted
    run resumes where it stopped.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} must be at least 1")
    root = Path(dataset_dir)
    store = _open_repaired(root)
    requests = caption_requests(root, captioner.frames_per_request)
    current = (captioner.name, captioner.prompt_id)
    todo = [r for r in requests if overwrite or not store.has((r.tracklet_id, *current))]
    captioner.check_requests(todo)
    order = [r.tracklet_id for r in requests]

    last_save = time.monotonic()
    with _progress(progress) as bar:
        task = bar.add_task(f"captioning ({captioner.name})", total=len(todo))
        for batch in _batches(todo, batch_size):
            captions = captioner.describe_batch(batch)
            if len(captions) != len(batch):
                raise ValueError(f"captioner {captioner.name!r} returned {len(captions)} captions for "
                                 f"{len(batch)} requests")
            for request, caption in zip(batch, captions):
                store.put(caption_row(request.tracklet_id, caption, *current))
            bar.advance(task, len(batch))
            if time.monotonic() - last_save >= checkpoint_seconds:
                store.save(current, order)
                last_save = time.monotonic()
    store.save(current, order)
    return CaptionSummary(captioned=len(todo), cached=len(requests) - len(todo), total=len(requests),
                          captioner=captioner.name, prompt_id=captioner.prompt_id,
                          dropped_torn_line=store.dropped_torn_line)


@dataclass(frozen=True)
class ImportSummary:
    imported: int
    total: int
    dropped_torn_line: bool = False


def _read_jsonl_captions(path: Path) -> Iterator[tuple[int, object, object]]:
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{path}:{line_no}: not a JSON line ({exc}); fix that line") from None
        if not isinstance(row, dict):
            raise DatasetFormatError(f"{path}:{line_no}: expected an object with tracklet_id and caption")
        yield line_no, row.get("tracklet_id"), row.get("caption")


def _read_csv_captions(path: Path) -> Iterator[tuple[int, object, object]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("tracklet_id", "caption") if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetFormatError(f"{path}: missing column {', '.join(missing)}; the header needs "
                                     "tracklet_id and caption")
        for row in reader:
            yield reader.line_num, row["tracklet_id"], row["caption"]


def read_caption_file(path: Path) -> dict[str, tuple[int, str]]:
    """Reviewed captions of a JSONL or CSV file: tracklet id -> (line number, caption)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"caption file {path} does not exist; give the path of a .jsonl or .csv file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        entries = _read_jsonl_captions(path)
    elif suffix == ".csv":
        entries = _read_csv_captions(path)
    else:
        raise DatasetFormatError(f"{path}: unknown caption file type {suffix!r}; use .jsonl or .csv "
                                 "(columns tracklet_id, caption)")
    captions: dict[str, tuple[int, str]] = {}
    for line_no, tracklet_id, caption in entries:
        if not isinstance(tracklet_id, str) or not tracklet_id.strip():
            raise DatasetFormatError(f"{path}:{line_no}: tracklet_id is missing; every line needs one")
        if not isinstance(caption, str) or not caption.strip():
            raise DatasetFormatError(f"{path}:{line_no}: tracklet {tracklet_id!r} has no caption; write one "
                                     "or delete the line")
        tracklet_id = tracklet_id.strip()
        if tracklet_id in captions:
            raise DatasetFormatError(f"{path}:{line_no}: tracklet {tracklet_id!r} already has a caption on line "
                                     f"{captions[tracklet_id][0]}; keep one of them")
        captions[tracklet_id] = (line_no, caption.strip())
    return captions


def import_captions(dataset_dir: str | Path, file: str | Path) -> ImportSummary:
    """Add reviewed captions (JSONL or CSV with tracklet_id, caption); they become the current captions."""
    root, path = Path(dataset_dir), Path(file)
    store = _open_repaired(root)
    known = {str(t.tracklet_id): None for t in all_tracklets(toolkit.load(root))}
    captions = read_caption_file(path)
    for tracklet_id, (line_no, _) in captions.items():
        if tracklet_id not in known:
            raise DatasetFormatError(f"{path}:{line_no}: tracklet {tracklet_id!r} is not in {root / 'tracklets.csv'}; "
                                     "fix the id or delete the line")
    for tracklet_id, (_, text) in captions.items():
        row = caption_row(tracklet_id, Caption(text, {"source": path.name}), IMPORT_CAPTIONER, IMPORT_PROMPT_ID,
                          reviewed=True)
        store.put(row)
    store.save((IMPORT_CAPTIONER, IMPORT_PROMPT_ID), list(known))
    return ImportSummary(imported=len(captions), total=len(known), dropped_torn_line=store.dropped_torn_line)
