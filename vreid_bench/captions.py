"""Caption stores and how captions reach a dataset's training tracklets.

A caption store is one ``captions.jsonl``: a row per (tracklet_id, captioner, prompt_id) with the caption, a
``reviewed`` flag and whatever its captioner records. Where it lives:

- a dataset built by ``vreid build`` keeps it in its own folder, ``<dataset>/captions.jsonl``;
- a registered dataset (MARS, iLIDS-VID, PRID-2011, DukeMTMC-VideoReID, LS-VID), which is often read-only, has a
  **sidecar**, ``$VREID_DATA/captions/<dataset>/captions.jsonl``;
- ``captions_dir`` moves either to ``<captions_dir>/<dataset>/captions.jsonl``.

Rows are keyed by each dataset's stable tracklet id: MARS ``train:<row>`` (the 1-based row of
``tracks_train_info.mat``), iLIDS-VID ``cam1/person001``, PRID-2011 ``cam_a/person_0001``, DukeMTMC-VideoReID
``train/<pid>/<tracklet>``, LS-VID ``<list>:<line>`` and a build's ``tracklet_id`` column. ``vreid caption
--dataset NAME --list-ids`` prints them.

**Which captions a run sees** (:func:`attach_captions`): a selector picks one caption per tracklet —
``current`` (the last row written for each tracklet: the latest captioning command or import), ``none``, a
captioner name or a prompt id — and only **training** tracklets get one. Captions of test tracklets may sit in a
store (the audit reads them) but never reach a model, and no model reads captions at inference. The dataset
then carries a :class:`CaptionSet` (store, selector, count, content hash) that the run records.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.errors import ConfigError, DatasetFormatError
from vreid_bench.io import atomic_write_text

CAPTIONS_FILE = "captions.jsonl"
SIDECAR_FOLDER = "captions"
CURRENT, NONE = "current", "none"
CacheKey = tuple[str, str, str]  # (tracklet_id, captioner, prompt_id)


def sidecar_root(captions_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where sidecars live: ``captions_dir``, else ``$VREID_DATA/captions`` (``./data/captions``)."""
    from vreid_bench.datasets import data_root

    return Path(captions_dir) if captions_dir is not None else data_root() / SIDECAR_FOLDER


def store_path(dataset: VideoReIDDataset, captions_dir: str | os.PathLike[str] | None = None) -> Path:
    """The caption store of ``dataset``: its own folder for a build, a sidecar otherwise (see the module)."""
    root = Path(dataset.root) if dataset.root else None
    if captions_dir is None and root is not None and (root / "manifest.json").is_file():
        return root / CAPTIONS_FILE
    return sidecar_root(captions_dir) / dataset.name.replace(os.sep, "_") / CAPTIONS_FILE


class CaptionStore:
    """The rows of one ``captions.jsonl`` keyed by (tracklet_id, captioner, prompt_id), in file order.

    The file is rewritten whole and atomically, so a reader never sees a torn file; a torn last line left by some
    other writer is dropped on read (``dropped_torn_line``) and a bad line elsewhere is an error naming it.
    """

    def __init__(self, path: Path, rows: dict[CacheKey, dict[str, Any]], dropped_torn_line: bool) -> None:
        self.path = path
        self.rows = rows
        self.dropped_torn_line = dropped_torn_line

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> CaptionStore:
        path = Path(path)
        rows: dict[CacheKey, dict[str, Any]] = {}
        if not path.is_file():
            return cls(path, rows, False)
        numbered = [(no, line) for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                    if line.strip()]
        dropped = False
        for index, (line_no, line) in enumerate(numbered):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if index == len(numbered) - 1:
                    dropped = True
                    break
                raise DatasetFormatError(f"{path}:{line_no}: not a JSON line ({exc}); fix or delete that line, "
                                         "then re-run `vreid caption`") from None
            if not isinstance(row, dict) or not isinstance(row.get("tracklet_id"), str) \
                    or not isinstance(row.get("caption"), str):
                raise DatasetFormatError(f"{path}:{line_no}: expected an object with string tracklet_id and "
                                         "caption; fix or delete that line, then re-run `vreid caption`")
            key = (row["tracklet_id"], str(row.get("captioner", "")), str(row.get("prompt_id", "")))
            rows.pop(key, None)  # a repeated key: the later line wins
            rows[key] = row
        return cls(path, rows, dropped)

    def has(self, key: CacheKey) -> bool:
        return key in self.rows

    def put(self, row: dict[str, Any]) -> None:
        key = (str(row["tracklet_id"]), str(row["captioner"]), str(row["prompt_id"]))
        self.rows.pop(key, None)
        self.rows[key] = row

    def drop(self, tracklet_ids: Iterable[str]) -> int:
        """Remove every row of these tracklets; the number removed."""
        gone = set(tracklet_ids)
        keys = [key for key in self.rows if key[0] in gone]
        for key in keys:
            del self.rows[key]
        return len(keys)

    def save(self, current: tuple[str, str] | None = None, order: Sequence[str] = ()) -> None:
        """Write atomically; rows of the ``current`` (captioner, prompt_id) go last, in tracklet ``order``, so
        they become each tracklet's current caption."""
        rank = {tracklet_id: i for i, tracklet_id in enumerate(order)}
        others = [row for key, row in self.rows.items() if key[1:] != current]
        latest = [row for key, row in self.rows.items() if key[1:] == current]
        latest.sort(key=lambda row: rank.get(str(row["tracklet_id"]), len(rank)))
        atomic_write_text(self.path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in others + latest))

    def selected(self, selector: str = CURRENT) -> dict[str, dict[str, Any]]:
        """One row per tracklet: its last row (``current``), or its last row of one captioner or prompt id."""
        if selector == NONE:
            return {}
        chosen: dict[str, dict[str, Any]] = {}
        for (tracklet_id, captioner, prompt_id), row in self.rows.items():
            if selector in (CURRENT, captioner, prompt_id):
                chosen[tracklet_id] = row
        return chosen

    def sources(self) -> Counter[str]:
        """``captioner@prompt_id`` -> rows, for messages that list what a store holds."""
        return Counter(f"{captioner}@{prompt_id}" for _, captioner, prompt_id in self.rows)


@dataclass(frozen=True)
class CaptionSet:
    """The captions a dataset's training tracklets carry, as a run records them.

    ``sha256`` hashes the sorted (tracklet_id, caption) pairs attached: two stores that give a model the same
    captions have the same hash, and editing one caption changes it.
    """

    store: str
    selector: str
    count: int
    sha256: str
    sources: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "selector": self.selector, "count": self.count, "sha256": self.sha256,
                "sources": dict(self.sources)}


def captions_hash(pairs: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for tracklet_id, caption in sorted(pairs):
        digest.update(f"{tracklet_id}\t{caption}\n".encode("utf-8"))
    return digest.hexdigest()


def all_tracklets(dataset: VideoReIDDataset) -> tuple[Tracklet, ...]:
    return (*dataset.train, *dataset.query, *dataset.gallery)


def unknown_ids_message(path: Path, unknown: Sequence[str], dataset: VideoReIDDataset) -> str:
    shown = ", ".join(repr(t) for t in list(unknown)[:3]) + (", ..." if len(unknown) > 3 else "")
    return (f"{path}: {len(unknown)} caption(s) for tracklet ids that {dataset.name} does not have ({shown}); the "
            f"file belongs to another dataset or version: delete those rows, or caption again "
            f"(`vreid caption --dataset {dataset.name} --list-ids` prints the ids)")


def check_selector(store: CaptionStore, selector: str) -> None:
    if selector in (CURRENT, NONE) or not store.rows or store.selected(selector):
        return
    held = ", ".join(sorted(store.sources())) or "nothing"
    raise ConfigError(f"no captions in {store.path} match {selector!r}: it holds {held}; give current, none, a "
                      "captioner name or a prompt id")


def attach_captions(dataset: VideoReIDDataset, selector: str = CURRENT,
                    captions_dir: str | os.PathLike[str] | None = None) -> VideoReIDDataset:
    """``dataset`` with the selected captions on its training tracklets (and its test tracklets without any).

    A store with rows for tracklet ids the dataset does not have is an error naming the first few: it belongs
    to another dataset or version. Without a store (or with ``selector="none"``) no tracklet has a caption.
    """
    path = store_path(dataset, captions_dir)
    store = CaptionStore.open(path)  # a torn last line is left out here and repaired by the next captioning
    known = {t.tracklet_id for t in all_tracklets(dataset)}
    unknown = sorted({key[0] for key in store.rows} - known)
    if unknown:
        raise DatasetFormatError(unknown_ids_message(path, unknown, dataset))
    check_selector(store, selector)
    rows = store.selected(selector)

    def captioned(tracklet: Tracklet) -> Tracklet:
        row = rows.get(str(tracklet.tracklet_id))
        caption = row["caption"] if row else None
        return tracklet if tracklet.caption == caption else replace(tracklet, caption=caption)

    def uncaptioned(tracklet: Tracklet) -> Tracklet:
        return tracklet if tracklet.caption is None else replace(tracklet, caption=None)

    train = [captioned(t) for t in dataset.train]
    attached = [(str(t.tracklet_id), t.caption) for t in train if t.caption is not None]
    used = {str(t.tracklet_id) for t in train}
    sources = Counter(f"{row.get('captioner', '')}@{row.get('prompt_id', '')}" for tracklet_id, row in rows.items()
                      if tracklet_id in used)
    caption_set = CaptionSet(store=str(path.resolve()), selector=selector, count=len(attached),
                             sha256=captions_hash(attached),
                             sources=dict(sorted(sources.items()))) if attached else None
    return replace(dataset, train=train, query=[uncaptioned(t) for t in dataset.query],
                   gallery=[uncaptioned(t) for t in dataset.gallery], captions=caption_set)


def current_captions(dataset: VideoReIDDataset, captions_dir: str | os.PathLike[str] | None = None,
                     selector: str = CURRENT) -> dict[str, str]:
    """Caption per tracklet id of every split (for pictures and audits; training goes through attach_captions)."""
    store = CaptionStore.open(store_path(dataset, captions_dir))
    return {tracklet_id: str(row["caption"]) for tracklet_id, row in store.selected(selector).items()}
