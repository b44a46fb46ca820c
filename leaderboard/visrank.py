"""Ranked-list pictures (``vreid visrank``): which gallery tracklets beat the true match, query by query.

One PNG per query: the query tracklet (a few frames), then its top-K gallery tracklets in the order the run's
protocol ranks them (:meth:`vreid_bench.evaluation.RankingProblem.ranked`: junk, same-camera matches and other
videos left out, exactly as the metric does), each framed green when it is a true match and red when it is not,
with its rank, distance, identity and camera under it; the query's AP, and the rank of its first true match
when that is below the top K. ``worst`` orders queries by AP, lowest first: on sports and dance footage these
are the teammates in the same kit, and the same player in the other time segment.

The ranking comes from the run's saved features (``features.npz``), extracted and saved first if the protocol
needs another test sampling; the frames come from the dataset, loaded as the run recorded it. The pictures go to
``<run>/visrank/<protocol>/`` with ``index.json`` (query, AP, first-match rank, file), which the HTML report reads
to show each model's hardest queries.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from builders.captions.recipe import evenly_spaced
from vreid_bench.data import Tracklet
from vreid_bench.errors import ConfigError
from vreid_bench.evaluation import ranking_problem
from vreid_bench.io import atomic_write_bytes, atomic_write_json

VISRANK_FOLDER = "visrank"
INDEX_FILE = "index.json"
MATCH, WRONG, QUERY = (34, 160, 60), (210, 40, 40), (90, 90, 90)


@dataclass(frozen=True)
class Ranked:
    rank: int
    tracklet_id: str
    pid: int
    camid: int
    distance: float
    match: bool


@dataclass(frozen=True)
class RankedQuery:
    index: int
    tracklet_id: str
    pid: int
    camid: int
    ap: float | None  # None for a query without a true match
    first_rank: int  # 0 without a true match
    top: tuple[Ranked, ...]


def ranked_queries(saved: Any, protocol: Any, top: int, queries: int | None = None,
                   worst: bool = False) -> list[RankedQuery]:
    """The ranked lists of ``queries`` queries (all by default), in query order or, ``worst``, by AP ascending."""
    if top < 1:
        raise ConfigError(f"--top {top}: show at least one gallery tracklet per query (10 is usual)")
    problem = ranking_problem(saved.query, saved.gallery, saved.query_labels, saved.gallery_labels, protocol)
    gallery_ids = np.concatenate([saved.query_ids, saved.gallery_ids]) if problem.from_query else saved.gallery_ids
    result = saved.evaluate(protocol)
    order = list(range(len(saved.query_ids)))
    if worst:
        order = [i for i in order if not np.isnan(result.query_ap[i])]
        order.sort(key=lambda i: (float(result.query_ap[i]), i))
    chosen = order if queries is None else order[:queries]
    lists = []
    for i in chosen:
        indices, matches = problem.ranked(i)
        shown = tuple(Ranked(rank + 1, str(gallery_ids[j]), int(problem.gallery.pids[j]),
                             int(problem.gallery.camids[j]), float(problem.distmat[i, j]), bool(m))
                      for rank, (j, m) in enumerate(zip(indices[:top], matches[:top])))
        ap = None if np.isnan(result.query_ap[i]) else float(result.query_ap[i])
        lists.append(RankedQuery(i, str(saved.query_ids[i]), int(saved.query_labels.pids[i]),
                                 int(saved.query_labels.camids[i]), ap, int(result.query_first_rank[i]), shown))
    return lists


@dataclass(frozen=True)
class VisrankLayout:
    thumb_width: int = 48
    thumb_height: int = 96
    frames: int = 3
    border: int = 4
    gap: int = 6
    query_gap: int = 18
    margin: int = 8
    text_lines: int = 3
    font_size: int = 11

    @property
    def cell_width(self) -> int:
        return self.frames * self.thumb_width + (self.frames - 1) * 2 + 2 * self.border

    @property
    def cell_height(self) -> int:
        return self.thumb_height + 2 * self.border

    @property
    def height(self) -> int:
        return 2 * self.margin + self.cell_height + 4 + self.text_lines * (self.font_size + 3)

    def width(self, top: int) -> int:
        return 2 * self.margin + self.cell_width + self.query_gap + top * (self.cell_width + self.gap) - self.gap

    def left(self, position: int) -> int:
        """Left edge of cell ``position``: 0 the query, 1.. the ranked gallery tracklets."""
        if position == 0:
            return self.margin
        return self.margin + self.cell_width + self.query_gap + (position - 1) * (self.cell_width + self.gap)


def _draw_cell(image: Image.Image, draw: ImageDraw.ImageDraw, left: int, frames: Sequence[str], colour: tuple,
               lines: Sequence[str], layout: VisrankLayout, font: Any) -> None:
    top = layout.margin
    draw.rectangle((left, top, left + layout.cell_width - 1, top + layout.cell_height - 1), fill=colour)
    inner = (left + layout.border, top + layout.border)
    draw.rectangle((inner[0], inner[1], left + layout.cell_width - layout.border - 1,
                    top + layout.cell_height - layout.border - 1), fill=(225, 225, 225))
    for column, path in enumerate(evenly_spaced(frames, layout.frames)):
        with Image.open(path) as frame:
            thumb = ImageOps.contain(frame.convert("RGB"), (layout.thumb_width, layout.thumb_height))
        x = inner[0] + column * (layout.thumb_width + 2) + (layout.thumb_width - thumb.width) // 2
        image.paste(thumb, (x, inner[1] + (layout.thumb_height - thumb.height) // 2))
    for number, line in enumerate(lines[:layout.text_lines]):
        draw.text((left, top + layout.cell_height + 4 + number * (layout.font_size + 3)), line,
                  fill=(0, 0, 0) if number == 0 else (70, 70, 70), font=font)


def render_ranked_query(query: RankedQuery, tracklets: dict[str, Tracklet], names: dict[int, str],
                        layout: VisrankLayout = VisrankLayout()) -> bytes:
    """PNG bytes of one query's ranked list (see the module docstring)."""
    top = max(len(query.top), 1)
    image = Image.new("RGB", (layout.width(top), layout.height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=layout.font_size)
    name = names.get(query.pid, str(query.pid))
    outcome = ("no true match" if query.first_rank == 0 else
               f"first match: rank {query.first_rank}" if query.first_rank > len(query.top) else
               f"AP {100 * query.ap:.1f} %" if query.ap is not None else "")
    _draw_cell(image, draw, layout.left(0), tracklets[query.tracklet_id].frames, QUERY,
               [f"query  id {name}", f"cam {query.camid}", outcome], layout, font)
    for position, item in enumerate(query.top, start=1):
        _draw_cell(image, draw, layout.left(position), tracklets[item.tracklet_id].frames,
                   MATCH if item.match else WRONG,
                   [f"#{item.rank}  d {item.distance:.3f}", f"id {names.get(item.pid, str(item.pid))}",
                    f"cam {item.camid}"], layout, font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def write_visrank(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                  protocol_name: str | None = None, queries: int | None = 10, worst: bool = False, top: int = 10,
                  layout: VisrankLayout = VisrankLayout(), progress: bool = True) -> list[Path]:
    """Write the ranked-list PNGs of a finished run and their ``index.json``; returns the PNGs in order."""
    from vreid_bench.engine.rundir import read_run_config
    from vreid_bench.engine.saved import features_file, load_features, tracklet_ids
    from vreid_bench.engine.train import evaluate_run_under
    from vreid_bench.protocol import get_protocol

    run_dir = Path(run_dir)
    record = read_run_config(run_dir)
    protocol = (record.protocol if protocol_name is None else get_protocol(protocol_name)).with_split(
        record.protocol.split)
    path = run_dir / features_file(protocol.test_sampling, record.protocol.test_sampling)
    if not path.is_file():
        evaluate_run_under(run_dir, protocol, progress=progress)  # extracts the features and saves them
    saved = load_features(path)
    dataset = record.dataset.load()
    tracklets = {**dict(zip(tracklet_ids(dataset.query, "query"), dataset.query)),
                 **dict(zip(tracklet_ids(dataset.gallery, "gallery"), dataset.gallery))}
    missing = [i for i in (*saved.query_ids, *saved.gallery_ids) if str(i) not in tracklets]
    if missing:
        raise ConfigError(f"{path} names tracklets the dataset no longer has ({missing[0]} ...): the dataset "
                          "changed since the run; restore it or train again")
    folder = Path(out) if out is not None else run_dir / VISRANK_FOLDER / protocol.name
    written, index = [], []
    for order, query in enumerate(ranked_queries(saved, protocol, top, queries, worst), start=1):
        png = folder / f"{order:03d}_{_safe(query.tracklet_id)}.png"
        atomic_write_bytes(png, render_ranked_query(query, tracklets, dataset.pid_names, layout))
        written.append(png)
        index.append({"file": png.name, "query": query.tracklet_id, "ap": query.ap,
                      "first_rank": query.first_rank, "top": [asdict(item) for item in query.top]})
    atomic_write_json(folder / INDEX_FILE, {"run_dir": str(run_dir), "model": record.model,
                                            "protocol": protocol.name, "worst": worst, "queries": index})
    return written


def read_visrank(run_dir: str | os.PathLike[str]) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``visrank/<protocol>/index.json`` of a run, with its folder."""
    found = []
    for index in sorted(Path(run_dir, VISRANK_FOLDER).glob(f"*/{INDEX_FILE}")):
        try:
            found.append((index.parent, json.loads(index.read_text())))
        except (OSError, ValueError):
            continue
    return found
