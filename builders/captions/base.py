"""The captioner interface and registry, captioning a dataset into its caption store, and reviewed imports.

A captioner turns a few frames of a tracklet (and, for synthetic footage, the identity's attribute sheet) into
one sentence. Captions are cached by (tracklet_id, captioner, prompt_id): a re-run only captions what is
missing, and a new prompt, recipe or template version is a new cache key rather than a silent overwrite.

What is captioned (:func:`caption_target`): the **training** tracklets of a dataset — a build, or a registered
dataset (MARS, iLIDS-VID at one split, PRID-2011, DukeMTMC-VideoReID, LS-VID), whose captions go to a sidecar
(:mod:`vreid_bench.captions`). ``include_test`` adds the test tracklets, for the audit only: no run ever trains on
them. The store is rewritten whole and atomically at checkpoints every few seconds and at the end, so a killed
run loses at most one checkpoint interval and resumes where it stopped. The rows of the latest command are
written last: they are each tracklet's current caption.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from builders.captions.recipe import evenly_spaced
from vreid_bench.captions import CaptionStore, all_tracklets, store_path, unknown_ids_message
from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, UnknownNameError
from vreid_bench.registry import Registry

ATTRIBUTES_DIR = "attributes"
IMPORT_CAPTIONER = "import"
IMPORT_PROMPT_ID = "reviewed"
CORE_FIELDS = ("tracklet_id", "caption", "captioner", "prompt_id", "reviewed")

T = TypeVar("T")


@dataclass(frozen=True)
class CaptionerEntry:
    """A captioner by name: ``factory`` is a class or function (or ``"module:attribute"``) taking its options."""

    name: str
    factory: Any
    summary: str = ""


BUILTIN_CAPTIONERS = (
    CaptionerEntry("template", "builders.captions.template:TemplateCaptioner",
                   "sentences from the attribute sheets of synthetic footage; --hallucination corrupts some"),
    CaptionerEntry("mllm", "builders.captions.mllm:MLLMCaptioner",
                   "a multimodal LLM (default microsoft/Phi-4-multimodal-instruct, the CG-CLIP paper's)"),
)
# Registered captioners; an installed package adds one through the ``vreid.captioners`` entry-point group.
CAPTIONERS: Registry[CaptionerEntry] = Registry("captioner", "vreid.captioners", BUILTIN_CAPTIONERS,
                                                lambda entry: entry.name)
# Any other name that is a hub model id (``org/name``) or a local folder is captioned by this class.
MODEL_CAPTIONER = "builders.captions.mllm:MLLMCaptioner"


def register_captioner(name: str, factory: Any = None, summary: str = "") -> Any:
    """Add captioner ``name`` (``register_captioner("mine", MyCaptioner)``, or as a decorator on the class)."""

    def register(target: Any) -> Any:
        CAPTIONERS.add(CaptionerEntry(name, target, summary))
        return target

    return register(factory) if factory is not None else register


def short_hash(text: str, length: int = 10) -> str:
    """A prompt id: short, stable across processes (unlike ``hash``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class AttributeSheet:
    """The attribute sheet of one synthetic video: who is in it and what each identity visibly wears."""

    video: str
    kind: str | None
    identities: Mapping[str, Mapping[str, object]]


@dataclass(frozen=True)
class CaptionRequest:
    """What a captioner may look at for one tracklet.

    ``frames`` are a few crops chosen by the captioner (:meth:`Captioner.choose_frames`). ``attributes`` is the
    identity's entry of its video's attribute sheet and ``sheet`` the whole sheet (the other identities a caption
    could be confused with); both are None for real footage, which has no sheets.
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

    def choose_frames(self, frames: Sequence[str]) -> tuple[str, ...]:
        """The frames of a tracklet this captioner is shown (default: ``frames_per_request`` evenly spaced)."""
        return tuple(evenly_spaced(frames, self.frames_per_request))

    def check_requests(self, requests: Sequence[CaptionRequest]) -> None:
        """Raise a user error before any work starts if these requests cannot be captioned."""


def names_a_model(name: str) -> bool:
    """Whether an unregistered captioner name means a transformers model: a hub id ``org/name`` or a folder."""
    return "/" in name or Path(name).expanduser().is_dir()


def _import(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def create_captioner(name: str, **options: object) -> Captioner:
    """Build a captioner by name; options go to its constructor and are checked against it.

    A name that is not registered but is a model id or a local folder builds the model captioner for it.
    """
    try:
        target = CAPTIONERS.get(name).factory
    except UnknownNameError:
        if not names_a_model(name):
            raise UnknownNameError(
                f"unknown captioner {name!r}: use one of {', '.join(CAPTIONERS.names())}, a transformers model id "
                "(org/name), a local model folder, or `--import FILE` for reviewed captions"
            ) from None
        target, options = MODEL_CAPTIONER, {"model": name, **options}
    cls = _import(target)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"captioner {name!r} takes no option {', '.join(unknown)}; its options are: {', '.join(accepted) or 'none'}"
        )
    return cls(**options)


def caption_row(tracklet_id: str, caption: Caption, captioner: str, prompt_id: str,
                reviewed: bool = False) -> dict[str, object]:
    text = caption.text.strip()
    if not text:
        raise ConfigError(f"captioner {captioner!r} returned an empty caption for tracklet {tracklet_id!r}; nothing "
                          "of this batch was written: raise max_new_tokens or check that the model answers the "
                          "prompt (`vreid caption ... --batch-size 1` on that tracklet)")
    row: dict[str, object] = {"tracklet_id": tracklet_id, "caption": text, "captioner": captioner,
                              "prompt_id": prompt_id, "reviewed": reviewed}
    row.update(caption.extra)
    return row


# --- what is captioned --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionTarget:
    """A dataset's tracklets to caption, the store the captions go to and where its attribute sheets are.

    ``tracklets`` are the training tracklets (with ``include_test``, every tracklet); ``split`` the split of a
    dataset with several.
    """

    dataset: VideoReIDDataset
    store: Path
    tracklets: tuple[Tracklet, ...]
    include_test: bool = False

    @property
    def split(self) -> object:
        return self.dataset.notes.get("split")

    @property
    def sheets_root(self) -> Path | None:
        root = Path(self.dataset.root) if self.dataset.root else None
        return root if root is not None and (root / "manifest.json").is_file() else None

    def describe(self) -> str:
        split = f" split {self.split}" if self.split is not None else ""
        which = "every tracklet" if self.include_test else "training tracklets"
        return f"{self.dataset.name}{split} ({which})"


def caption_target(dataset: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                   split: int | None = None, captions_dir: str | os.PathLike[str] | None = None,
                   include_test: bool = False) -> CaptionTarget:
    """The target for a registered dataset name or a build directory (``root`` and ``split`` as in ``vreid run``)."""
    from vreid_bench.datasets import load

    options = {"split": split} if split is not None else {}
    loaded = load(dataset, root=root, captions="none", **options)
    chosen = all_tracklets(loaded) if include_test else tuple(loaded.train)
    if not chosen:
        raise DatasetFormatError(f"dataset {loaded.name!r} has no training tracklets to caption; give a dataset with "
                                 "a train split (or --include-test to caption its test tracklets for the audit)")
    return CaptionTarget(loaded, store_path(loaded, captions_dir), chosen, include_test)


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


def caption_requests(target: CaptionTarget, captioner: Captioner | None = None) -> list[CaptionRequest]:
    """One request per tracklet of the target, in order, with the frames ``captioner`` chooses."""
    choose = captioner.choose_frames if captioner is not None else (lambda frames: tuple(evenly_spaced(frames, 4)))
    sheets: dict[str, AttributeSheet | None] = {}
    requests = []
    for tracklet in target.tracklets:
        video = str(tracklet.video or "")
        if video not in sheets:
            sheets[video] = read_attribute_sheet(target.sheets_root, video) if target.sheets_root and video else None
        sheet = sheets[video]
        track_id = track_id_of(target.dataset.pid_names.get(tracklet.pid, str(tracklet.pid)))
        requests.append(CaptionRequest(
            tracklet_id=str(tracklet.tracklet_id), video=video, track_id=track_id, frames=choose(tracklet.frames),
            attributes=sheet.identities.get(track_id) if sheet else None, sheet=sheet,
        ))
    return requests


def listed_ids(target: CaptionTarget) -> list[dict[str, object]]:
    """The rows ``--list-ids`` prints: id, identity, camera, split, frame count and first frame of each tracklet."""
    split_of = {id(t): name for name in ("train", "query", "gallery") for t in getattr(target.dataset, name)}
    return [{"tracklet_id": t.tracklet_id, "pid": target.dataset.pid_names.get(t.pid, t.pid), "camid": t.camid,
             "split": split_of[id(t)], "n_frames": len(t.frames), "first_frame": t.frames[0]}
            for t in target.tracklets]


# --- captioning and import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionSummary:
    captioned: int
    cached: int
    total: int
    captioner: str
    prompt_id: str
    store: Path
    dropped_torn_line: bool = False


@dataclass(frozen=True)
class CaptionPlan:
    """The work a captioning command is about to do, for the line it prints before starting."""

    todo: int
    cached: int
    frames_per_tracklet: int
    batch_size: int

    def describe(self) -> str:
        calls = -(-self.todo // self.batch_size)
        return (f"{self.todo} tracklets to caption ({self.cached} already captioned) × {self.frames_per_tracklet} "
                f"frames each = {self.todo * self.frames_per_tracklet} images, in {calls} batches of up to "
                f"{self.batch_size}")


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _open_repaired(path: Path) -> CaptionStore:
    """Open the store, rewriting it at once if its last line was torn so every reader can read it."""
    store = CaptionStore.open(path)
    if store.dropped_torn_line:
        store.save()
    return store


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def _check_store_matches(store: CaptionStore, dataset: VideoReIDDataset) -> None:
    unknown = sorted({key[0] for key in store.rows} - {str(t.tracklet_id) for t in all_tracklets(dataset)})
    if unknown:
        raise DatasetFormatError(unknown_ids_message(store.path, unknown, dataset))


def caption_dataset(target: CaptionTarget | str | os.PathLike[str], captioner: Captioner, batch_size: int = 8,
                    overwrite: bool = False, progress: bool = True, checkpoint_seconds: float = 5.0,
                    announce: Any = None) -> CaptionSummary:
    """Caption every tracklet of the target that has no caption from this captioner and prompt yet.

    ``target`` is a :class:`CaptionTarget` or a build directory (its training tracklets). ``overwrite``
    recaptions them all. The store is checkpointed every ``checkpoint_seconds``. ``announce`` receives the
    :class:`CaptionPlan` before any work starts.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} must be at least 1")
    if not isinstance(target, CaptionTarget):
        target = caption_target(target)
    store = _open_repaired(target.store)
    _check_store_matches(store, target.dataset)
    requests = caption_requests(target, captioner)
    current = (captioner.name, captioner.prompt_id)
    todo = [r for r in requests if overwrite or not store.has((r.tracklet_id, *current))]
    frames = max((len(r.frames) for r in requests), default=0)
    if announce is not None:
        announce(CaptionPlan(len(todo), len(requests) - len(todo), frames, batch_size))
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
            rows = [caption_row(request.tracklet_id, caption, *current) for request, caption in zip(batch, captions)]
            for row in rows:  # the whole batch is checked before any of it is stored
                store.put(row)
            bar.advance(task, len(batch))
            if time.monotonic() - last_save >= checkpoint_seconds:
                store.save(current, order)
                last_save = time.monotonic()
    store.save(current, order)
    return CaptionSummary(captioned=len(todo), cached=len(requests) - len(todo), total=len(requests),
                          captioner=captioner.name, prompt_id=captioner.prompt_id, store=store.path,
                          dropped_torn_line=store.dropped_torn_line)


@dataclass(frozen=True)
class ImportSummary:
    imported: int
    total: int
    store: Path
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


def _few(ids: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")


def import_captions(target: CaptionTarget | str | os.PathLike[str], file: str | os.PathLike[str]) -> ImportSummary:
    """Add reviewed captions (JSONL or CSV with tracklet_id, caption); they become the current captions.

    Every id must be a tracklet of the target: an id the dataset does not have, or a test tracklet offered as a
    training caption (without ``include_test``), is refused, naming the first few, and nothing is written.
    """
    if not isinstance(target, CaptionTarget):
        target = caption_target(target)
    path = Path(file)
    captions = read_caption_file(path)
    known = {str(t.tracklet_id) for t in all_tracklets(target.dataset)}
    unknown = [tracklet_id for tracklet_id in captions if tracklet_id not in known]
    if unknown:
        raise DatasetFormatError(f"{path}: {len(unknown)} tracklet id(s) are not in {target.dataset.name} "
                                 f"({_few(unknown)}); fix the ids or delete those lines (`vreid caption --dataset "
                                 f"{target.dataset.name} --list-ids` prints them)")
    allowed = [str(t.tracklet_id) for t in target.tracklets]
    test = [tracklet_id for tracklet_id in captions if tracklet_id not in set(allowed)]
    if test:
        raise DatasetFormatError(f"{path}: {len(test)} caption(s) are for test tracklets of {target.describe()} "
                                 f"({_few(test)}); captions are for training only: delete those lines, or pass "
                                 "--include-test to keep them for the audit (no run trains on them)")
    store = _open_repaired(target.store)
    _check_store_matches(store, target.dataset)
    for tracklet_id, (_, text) in captions.items():
        row = caption_row(tracklet_id, Caption(text, {"source": path.name}), IMPORT_CAPTIONER, IMPORT_PROMPT_ID,
                          reviewed=True)
        store.put(row)
    store.save((IMPORT_CAPTIONER, IMPORT_PROMPT_ID), allowed)
    return ImportSummary(imported=len(captions), total=len(allowed), store=store.path,
                         dropped_torn_line=store.dropped_torn_line)
