"""When is a margin a result? A paired bootstrap over queries for every leaderboard table.

Each result stores every query's AP and first-match rank. One table's configurations were evaluated on the same
queries (the same dataset, split and protocol), so each bootstrap resample draws one multiset of queries and
scores *every* configuration on it: the resamples are paired, and the difference between two rows is measured on
the same queries each time. With several seeds or splits, each (seed, split) stratum is resampled on its own and a
configuration's statistic is the mean over its strata, as its table value is.

For each row the percentile interval (2.5th and 97.5th percentiles of the resampled statistic, 95 % by default)
of its mAP and R1, and of its difference to the best row (the highest mAP); a row whose mAP difference interval
contains 0 is *tied* with the best. Resampling is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
LEVEL = 0.95
Stratum = tuple[int, int]  # (seed, split); split -1 for a dataset with one


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class RowSignificance:
    """One row's intervals; ``None`` where the row has no per-query results (or is the best, for deltas)."""

    map_ci: Interval | None = None
    r1_ci: Interval | None = None
    map_delta: float | None = None  # row − best, as fractions
    map_delta_ci: Interval | None = None
    r1_delta: float | None = None
    r1_delta_ci: Interval | None = None
    verdict: str = ""  # "best", "tied", "below", or "" without an interval


@dataclass(frozen=True)
class TableSignificance:
    rows: tuple[RowSignificance, ...]
    queries: int  # valid queries of one stratum (the smallest, if strata differ)
    excluded: int  # queries without a true match, left out by the protocol
    strata: int
    resamples: int
    seed: int
    note: str = ""

    @property
    def description(self) -> str:
        if not self.queries:
            return self.note
        stratum = f" in each of {self.strata} seeds × splits" if self.strata > 1 else ""
        excluded = f" ({self.excluded} more without a true match excluded)" if self.excluded else ""
        return (f"{self.queries} queries{stratum}{excluded}; {int(LEVEL * 100)} % intervals: paired bootstrap over "
                f"queries, {self.resamples} resamples, seed {self.seed}; tied: the mAP difference from the best "
                "row is within its interval of zero")


@dataclass(frozen=True)
class QueryResults:
    """One result's per-query values: AP (NaN for a query without a match) and whether rank 1 is a match."""

    stratum: Stratum
    digest: str
    ap: np.ndarray
    rank1: np.ndarray

    @classmethod
    def of(cls, record: dict[str, Any]) -> "QueryResults | None":
        ap, first = record.get("query_ap"), record.get("query_first_rank")
        if not ap or not first:
            return None
        split = record.get("split")
        stratum = (int(record.get("seed") or 0), -1 if split is None else int(split))
        values = np.array([np.nan if v is None else v for v in ap], dtype=np.float64)
        return cls(stratum, str(record.get("query_digest") or ""), values, np.asarray(first) == 1)


def resample_counts(num_queries: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, num_queries) how often each query is drawn in each resample (draws with replacement)."""
    return rng.multinomial(num_queries, np.full(num_queries, 1.0 / num_queries), size=resamples)


def _interval(samples: np.ndarray) -> Interval:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(low), float(high))


def table_significance(rows: Sequence[Sequence[dict[str, Any]]], resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> TableSignificance:
    """Intervals and verdicts for the rows of one table; ``rows`` are each row's finished results (records)."""
    results = [[QueryResults.of(record) for record in records] for records in rows]
    usable = [bool(records) and all(r is not None for r in records) for records in results]
    if not any(usable):
        return TableSignificance(tuple(RowSignificance() for _ in rows), 0, 0, 0, resamples, seed,
                                 note="no per-query results in these runs: no intervals")
    strata: dict[Stratum, list[tuple[int, QueryResults]]] = {}
    for index, records in enumerate(results):
        if usable[index]:
            for result in records:
                strata.setdefault(result.stratum, []).append((index, result))
    rng = np.random.default_rng(seed)
    sums_map = np.zeros((len(rows), resamples))
    sums_r1 = np.zeros((len(rows), resamples))
    observed_map, observed_r1 = np.zeros(len(rows)), np.zeros(len(rows))
    counts_per_row = np.zeros(len(rows))
    sizes, excluded, problems = [], [], []
    for stratum in sorted(strata):
        members = strata[stratum]
        valid = ~np.isnan(members[0][1].ap)
        mismatch = [r for _, r in members if r.digest != members[0][1].digest or len(r.ap) != len(valid)
                    or not np.array_equal(~np.isnan(r.ap), valid)]
        if mismatch:
            problems.append(f"seed {stratum[0]}" + (f" split {stratum[1]}" if stratum[1] >= 0 else ""))
            for index, _ in members:
                usable[index] = False
            continue
        counts = resample_counts(int(valid.sum()), resamples, rng).astype(np.float64)  # (B, Q) shared by all rows
        sizes.append(int(valid.sum()))
        excluded.append(int((~valid).sum()))
        for index, result in members:
            ap, r1 = result.ap[valid], result.rank1[valid].astype(np.float64)
            sums_map[index] += counts @ ap / len(ap)  # (B,): this stratum's mean AP on each resample
            sums_r1[index] += counts @ r1 / len(r1)
            observed_map[index] += ap.mean()
            observed_r1[index] += r1.mean()
            counts_per_row[index] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_map = sums_map / counts_per_row[:, None]
        boot_r1 = sums_r1 / counts_per_row[:, None]
        point_map = observed_map / counts_per_row
        point_r1 = observed_r1 / counts_per_row
    candidates = [i for i, ok in enumerate(usable) if ok]
    best = max(candidates, key=lambda i: point_map[i]) if candidates else None
    out = []
    for index in range(len(rows)):
        if not usable[index] or best is None:
            out.append(RowSignificance())
            continue
        row = RowSignificance(map_ci=_interval(boot_map[index]), r1_ci=_interval(boot_r1[index]))
        if index == best:
            out.append(RowSignificance(row.map_ci, row.r1_ci, verdict="best"))
            continue
        map_delta = _interval(boot_map[index] - boot_map[best])
        r1_delta = _interval(boot_r1[index] - boot_r1[best])
        tied = map_delta.contains(0.0)
        out.append(RowSignificance(row.map_ci, row.r1_ci, float(point_map[index] - point_map[best]), map_delta,
                                   float(point_r1[index] - point_r1[best]), r1_delta, "tied" if tied else "below"))
    note = (f"results evaluated on other queries ({', '.join(problems)}): no intervals for their rows"
            if problems else "")
    return TableSignificance(tuple(out), min(sizes, default=0), max(excluded, default=0), len(sizes), resamples, seed,
                             note)
