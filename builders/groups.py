"""Video groups: videos that may share people, kept on one side of the train/test split.

SportsMOT cuts its clips from longer match videos and names them ``v_<YouTube id>_c<clip>``: clips of one match
share players, so a player could sit in a training clip and in a test clip. The group of a SportsMOT clip is
therefore its YouTube id. DanceTrack and other sources name each video on its own, so each is its own group.
``--groups FILE`` (CSV ``video,group``) sets the groups of any source; videos it does not name are their own.

:func:`group_splits` gives all videos of a group one split. Where the source's own train/val lists put one group
on both sides, the group goes where most of its videos are. A tie goes to test, so the source's evaluation side
keeps its clips. The clips moved are counted and the manifest records them.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

SPORTSMOT_CLIP = re.compile(r"^v_(?P<match>.+)_c\d+$")


def match_key(video: str, layout: str) -> str:
    """The group a video belongs to without a groups file: a SportsMOT clip's match, else the video itself."""
    if layout in ("sportsmot", "raw-footage"):  # raw clips named v_<id>_c<k> are SportsMOT's too
        found = SPORTSMOT_CLIP.match(video)
        if found:
            return found.group("match")
    return video


def read_groups(path: str | os.PathLike[str]) -> dict[str, str]:
    """``video,group`` rows of a CSV (a header row naming ``video`` and ``group`` is optional)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"--groups {path}: no such file; give a CSV with the columns video,group")
    groups: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells) or (line_no == 1 and [c.lower() for c in cells[:2]] == ["video", "group"]):
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise DatasetFormatError(f"{path}:{line_no}: expected video,group; fix that line")
            if cells[0] in groups and groups[cells[0]] != cells[1]:
                raise DatasetFormatError(f"{path}:{line_no}: video {cells[0]!r} is already in group "
                                         f"{groups[cells[0]]!r}; give each video one group")
            groups[cells[0]] = cells[1]
    return groups


def video_groups(videos: Sequence[str], layout: str, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """The group of every video: from ``given`` (a groups file) where it names the video, else its match key."""
    given = given or {}
    unknown = sorted(set(given) - set(videos))
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise ConfigError(f"--groups names {len(unknown)} video(s) this build does not have ({shown}); "
                          "fix the names or remove those rows")
    return {video: given.get(video, match_key(video, layout)) for video in videos}


@dataclass(frozen=True)
class GroupedSplits:
    splits: dict[str, str | None]  # video -> train | test | None (unsplit)
    moved: tuple[str, ...]  # videos whose source split was overruled by their group


def group_splits(source_splits: Mapping[str, str | None], groups: Mapping[str, str]) -> GroupedSplits:
    """One split per group (see the module docstring); videos of unsplit groups stay None."""
    members: dict[str, list[str]] = {}
    for video in source_splits:
        members.setdefault(groups[video], []).append(video)
    splits: dict[str, str | None] = {}
    moved = []
    for videos in members.values():
        sides = Counter(source_splits[v] for v in videos if source_splits[v] is not None)
        if not sides:
            splits.update({v: None for v in videos})
            continue
        chosen = "test" if sides["test"] >= sides["train"] else "train"
        for video in videos:
            if source_splits[video] is not None and source_splits[video] != chosen:
                moved.append(video)
            splits[video] = chosen
    return GroupedSplits(splits, tuple(sorted(moved)))
