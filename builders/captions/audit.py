"""``vreid caption audit``: are a dataset's captions long, varied, distinctive, consistent and (where truth exists)
correct?

Measured on the selected caption of every captioned tracklet (:mod:`vreid_bench.captions`):

- **Length and duplicates**: words per caption; the share of captioned tracklets whose exact caption is also
  the caption of another identity.
- **Distinctiveness**: for each identity, the number of other identities of the same video (the whole dataset
  where tracklets have no video) whose captions are at least as close to its captions as its own are to each
  other — its *confusers*. Closeness is the mean pairwise similarity of two sets of captions: cosine of CLIP text
  features where CLIP weights are at hand, otherwise the Jaccard overlap of their content words (articles and
  linking words left out). An identity with confusers is one its captions do not separate from a teammate, and
  caption-guided refinement cannot help there. An identity with one captioned tracklet is compared with itself
  (similarity 1): only identical captions confuse it.
- **Consistency**: each attribute statement (:mod:`builders.captions.attributes`) of an identity's tracklets
  against the majority of its tracklets that state that attribute (at least 3, a strict majority); a statement
  against the majority is listed as a likely hallucination.
- **Against the truth**, on builds of synthetic footage (attribute sheets): per attribute, precision (statements
  that are true / statements), recall (true statements / attributes the caption could state) and the
  hallucination rate (1 - precision).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from builders.captions.attributes import SLOTS, read_statements, truth_statements
from builders.captions.base import read_attribute_sheet, track_id_of
from vreid_bench.captions import CURRENT, CaptionStore, check_selector, store_path
from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.errors import ConfigError, DatasetFormatError
from vreid_bench.io import atomic_write_bytes, atomic_write_json, atomic_write_text

AUDIT_FOLDER = "caption-audit"
STOPWORDS = frozenset("a an the of and with in on who wears wearing is are has have his her their this that "
                      "person player dancer team jersey number".split())
MIN_MAJORITY = 3
Similarity = Callable[[list[str]], np.ndarray]  # captions -> (n, n) similarity matrix


@dataclass(frozen=True)
class IdentityRow:
    identity: str
    scope: str
    tracklets: int
    own_similarity: float
    confusers: int
    closest: str | None
    closest_similarity: float | None


@dataclass(frozen=True)
class Contradiction:
    tracklet_id: str
    identity: str
    attribute: str
    said: str
    majority: str
    majority_count: int
    mentions: int


@dataclass(frozen=True)
class AttributeScore:
    attribute: str
    statements: int
    true: int
    false: int
    truth: int

    @property
    def precision(self) -> float | None:
        return self.true / self.statements if self.statements else None

    @property
    def recall(self) -> float | None:
        return self.true / self.truth if self.truth else None

    @property
    def hallucination(self) -> float | None:
        return self.false / self.statements if self.statements else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall,
                "hallucination": self.hallucination}


@dataclass
class CaptionAudit:
    dataset: str
    store: str
    selector: str
    similarity: str
    summary: dict[str, Any]
    identities: list[IdentityRow] = field(default_factory=list)
    contradictions: list[Contradiction] = field(default_factory=list)
    consistency: dict[str, dict[str, int]] = field(default_factory=dict)  # attribute -> {mentions, against}
    truth: list[AttributeScore] = field(default_factory=list)  # empty without attribute sheets

    def overall_truth(self) -> AttributeScore | None:
        if not self.truth:
            return None
        return AttributeScore("all", *(sum(getattr(s, key) for s in self.truth)
                                       for key in ("statements", "true", "false", "truth")))

    def to_dict(self) -> dict[str, Any]:
        overall = self.overall_truth()
        return {"dataset": self.dataset, "store": self.store, "selector": self.selector,
                "similarity": self.similarity, "summary": self.summary,
                "distinctiveness": distinctiveness_summary(self.identities),
                "consistency": self.consistency, "contradictions": len(self.contradictions),
                "truth": [s.to_dict() for s in self.truth] + ([overall.to_dict()] if overall else [])}


# --- similarity ---------------------------------------------------------------------------------------------


def content_words(caption: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9][a-z0-9-]*", caption.lower()) if w not in STOPWORDS)


def token_similarity(captions: list[str]) -> np.ndarray:
    """Jaccard overlap of content words, (n, n); two empty captions are identical (1)."""
    vocabulary: dict[str, int] = {}
    rows = [[vocabulary.setdefault(w, len(vocabulary)) for w in content_words(c)] for c in captions]
    matrix = np.zeros((len(captions), max(len(vocabulary), 1)), dtype=np.float32)
    for i, columns in enumerate(rows):
        matrix[i, columns] = 1.0
    inter = matrix @ matrix.T
    sizes = matrix.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def clip_similarity(weights: str, backbone: str = "ViT-B-16") -> Similarity:
    """Cosine similarity of CLIP text features from ``weights`` (a file or an open_clip tag)."""
    import torch

    from vreid_bench.models.clip_backbone import create_clip_backbone

    tower = create_clip_backbone(backbone, pretrained=weights, text=True).eval()

    @torch.no_grad()
    def similarity(captions: list[str]) -> np.ndarray:
        features = torch.cat([tower.encode_text(tower.tokenize(captions[i:i + 64])).float()
                              for i in range(0, len(captions), 64)])
        features = torch.nn.functional.normalize(features, dim=1)
        return (features @ features.T).numpy()

    return similarity


def choose_similarity(measure: str, clip_weights: str | None) -> tuple[str, Similarity]:
    """``auto``: CLIP where weights are given or already cached, else word overlap; ``clip`` insists on CLIP."""
    if measure not in ("auto", "clip", "tokens"):
        raise ConfigError(f"--similarity {measure!r}: use auto, clip or tokens")
    if measure == "tokens":
        return "content-word Jaccard", token_similarity
    from vreid_bench.models.clip_backbone import cached_clip_weights

    weights = clip_weights or cached_clip_weights()
    if weights is None:
        if measure == "clip":
            raise ConfigError("--similarity clip needs CLIP weights: pass --clip-weights FILE (or a tag such as "
                              "openai on a machine with network), or use --similarity tokens")
        return "content-word Jaccard (no CLIP weights at hand)", token_similarity
    return f"CLIP text cosine ({Path(weights).name})", clip_similarity(weights)


# --- the measures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Captioned:
    tracklet: Tracklet
    identity: str
    scope: str
    caption: str


def distinctiveness(items: Sequence[Captioned], similarity: Similarity) -> list[IdentityRow]:
    """Each identity's confusers within its scope (see the module docstring)."""
    rows: list[IdentityRow] = []
    by_scope: dict[str, list[Captioned]] = {}
    for item in items:
        by_scope.setdefault(item.scope, []).append(item)
    for scope, members in sorted(by_scope.items()):
        members.sort(key=lambda m: m.identity)
        texts = sorted({m.caption for m in members})
        index = {text: i for i, text in enumerate(texts)}
        unique = similarity(texts)
        columns = np.array([index[m.caption] for m in members])
        identities = [m.identity for m in members]
        starts = np.array([i for i in range(len(identities)) if i == 0 or identities[i] != identities[i - 1]])
        sizes = np.diff(np.append(starts, len(identities)))
        names = [identities[i] for i in starts]
        for g, name in enumerate(names):
            own_rows = columns[starts[g]:starts[g] + sizes[g]]
            block = unique[np.ix_(own_rows, columns)]  # (k, n): this identity's captions against the scope's
            means = np.add.reduceat(block, starts, axis=1).sum(axis=0) / (sizes[g] * sizes)  # (G,)
            k = int(sizes[g])
            own_block = block[:, starts[g]:starts[g] + k]
            own = 1.0 if k == 1 else float((own_block.sum() - np.trace(own_block)) / (k * (k - 1)))
            means[g] = -np.inf
            confusers = int((means >= own - 1e-9).sum())
            closest = int(np.argmax(means)) if len(names) > 1 else None
            rows.append(IdentityRow(name, scope, k, round(own, 4), confusers,
                                    names[closest] if closest is not None else None,
                                    round(float(means[closest]), 4) if closest is not None else None))
    return rows


def distinctiveness_summary(rows: Sequence[IdentityRow]) -> dict[str, Any]:
    if not rows:
        return {"identities": 0}
    confusers = np.array([r.confusers for r in rows])
    return {"identities": len(rows), "distinct": int((confusers == 0).sum()),
            "distinct_share": float((confusers == 0).mean()), "mean_confusers": float(confusers.mean()),
            "max_confusers": int(confusers.max()),
            "identities_per_scope": float(len(rows) / len({r.scope for r in rows}))}


def consistency(items: Sequence[Captioned]) -> tuple[list[Contradiction], dict[str, dict[str, int]]]:
    """Statements against the majority of an identity's tracklets, and per attribute how many were checked."""
    by_identity: dict[str, list[tuple[Captioned, dict[str, frozenset[str]]]]] = {}
    for item in items:
        by_identity.setdefault(item.identity, []).append((item, read_statements(item.caption)))
    found: list[Contradiction] = []
    counts = {slot: {"checked": 0, "against": 0} for slot in SLOTS}
    for identity, statements in sorted(by_identity.items()):
        for slot in SLOTS:
            said = [(item, values[slot]) for item, values in statements if slot in values]
            if len(said) < MIN_MAJORITY:
                continue
            (majority, count), = Counter(values for _, values in said).most_common(1)
            if count * 2 <= len(said):
                continue
            counts[slot]["checked"] += len(said)
            for item, values in said:
                if values != majority:
                    counts[slot]["against"] += 1
                    found.append(Contradiction(str(item.tracklet.tracklet_id), identity, slot,
                                               ", ".join(sorted(values)), ", ".join(sorted(majority)), count,
                                               len(said)))
    return found, {slot: value for slot, value in counts.items() if value["checked"]}


def truth_scores(items: Sequence[Captioned], truth_of: Callable[[Captioned], dict | None]) -> list[AttributeScore]:
    """Per attribute, the captions' statements against the attribute sheets (see the module docstring)."""
    tallies = {slot: [0, 0, 0, 0] for slot in SLOTS}  # statements, true, false, truth
    seen = False
    for item in items:
        truth = truth_of(item)
        if truth is None:
            continue
        seen = True
        said = read_statements(item.caption)
        for slot in SLOTS:
            stated, real = said.get(slot, frozenset()), truth.get(slot, frozenset())
            tally = tallies[slot]
            tally[0] += len(stated)
            tally[1] += len(stated & real)
            tally[2] += len(stated - real)
            tally[3] += len(real)
    if not seen:
        return []
    return [AttributeScore(slot, *tally) for slot, tally in tallies.items() if tally[0] or tally[3]]


# --- the audit ----------------------------------------------------------------------------------------------


def _captioned(dataset: VideoReIDDataset, rows: dict[str, dict]) -> list[Captioned]:
    items = []
    for tracklet in (*dataset.train, *dataset.query, *dataset.gallery):
        row = rows.get(str(tracklet.tracklet_id))
        if row is None:
            continue
        identity = dataset.pid_names.get(tracklet.pid, str(tracklet.pid))
        items.append(Captioned(tracklet, identity, str(tracklet.video or "all"), str(row["caption"])))
    return items


def _sheet_truth(dataset: VideoReIDDataset) -> Callable[[Captioned], dict | None]:
    root = Path(dataset.root) if dataset.root else None
    is_build = root is not None and (root / "manifest.json").is_file()
    sheets: dict[str, Any] = {}

    def truth_of(item: Captioned) -> dict | None:
        if not is_build or item.scope == "all":
            return None
        if item.scope not in sheets:
            sheets[item.scope] = read_attribute_sheet(root, item.scope)  # type: ignore[arg-type]
        sheet = sheets[item.scope]
        attributes = sheet.identities.get(track_id_of(item.identity)) if sheet else None
        return truth_statements(attributes, sheet.kind) if attributes is not None else None

    return truth_of


def audit_captions(dataset: VideoReIDDataset, selector: str = CURRENT,
                   captions_dir: str | os.PathLike[str] | None = None, similarity: str = "auto",
                   clip_weights: str | None = None) -> CaptionAudit:
    """Audit the ``selector`` captions of every tracklet of ``dataset`` (loaded without captions)."""
    path = store_path(dataset, captions_dir)
    store = CaptionStore.open(path)
    if not store.rows:
        raise DatasetFormatError(f"{path} holds no captions to audit: caption the dataset first (`vreid caption "
                                 f"--dataset {dataset.root or dataset.name} --captioner ...`)")
    check_selector(store, selector)
    items = _captioned(dataset, store.selected(selector))
    if not items:
        raise DatasetFormatError(f"none of the captions in {path} is for a tracklet of {dataset.name}: caption it "
                                 "again")
    measure, similar = choose_similarity(similarity, clip_weights)
    words = np.array([len(item.caption.split()) for item in items])
    identities_of = Counter()
    for text, identity in {(item.caption, item.identity) for item in items}:
        identities_of[text] += 1
    shared = sum(1 for item in items if identities_of[item.caption] > 1)
    summary = {"captioned_tracklets": len(items), "identities": len({i.identity for i in items}),
               "distinct_captions": len({i.caption for i in items}),
               "words_mean": float(words.mean()), "words_median": float(np.median(words)),
               "words_min": int(words.min()), "words_max": int(words.max()),
               "shared_with_another_identity": shared, "shared_share": shared / len(items),
               "sources": dict(Counter(f"{r.get('captioner')}@{r.get('prompt_id')}"
                                       for r in store.selected(selector).values()))}
    contradictions, checked = consistency(items)
    return CaptionAudit(dataset=dataset.name, store=str(path), selector=selector, similarity=measure,
                        summary=summary, identities=distinctiveness(items, similar),
                        contradictions=contradictions, consistency=checked,
                        truth=truth_scores(items, _sheet_truth(dataset)))


def audit_folder(audit: CaptionAudit) -> Path:
    """Where an audit is written by default: beside its caption store."""
    return Path(audit.store).parent / AUDIT_FOLDER


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_audit(audit: CaptionAudit, folder: str | os.PathLike[str] | None = None) -> Path:
    """``audit.json``, ``identities.csv``, ``contradictions.csv``, ``attributes.csv`` and ``audit.png``; the JSON
    last, so a folder with it is complete."""
    from leaderboard.plots import caption_audit_png

    out = Path(folder) if folder is not None else audit_folder(audit)
    identity_rows = [asdict(row) for row in audit.identities]
    atomic_write_text(out / "identities.csv", _csv(identity_rows, [f for f in IdentityRow.__dataclass_fields__]))
    atomic_write_text(out / "contradictions.csv",
                      _csv([asdict(c) for c in audit.contradictions], list(Contradiction.__dataclass_fields__)))
    scores = [s.to_dict() for s in audit.truth]
    if scores:
        atomic_write_text(out / "attributes.csv", _csv(scores, list(scores[0])))
    atomic_write_bytes(out / "audit.png", caption_audit_png(audit.to_dict(), [r.confusers for r in audit.identities],
                                                            f"caption audit: {audit.dataset}"))
    atomic_write_json(out / "audit.json", audit.to_dict())
    return out


def read_audit(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(folder) / "audit.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
