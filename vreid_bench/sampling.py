"""Which frames of a tracklet form a clip, and which tracklets form a batch.

Frame samplers take the tracklet length ``n`` and the clip length ``seq_len`` and return frame indices; the
training sampler draws from a ``torch.Generator`` so that DataLoader workers get distinct, reproducible streams.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from vreid_bench.errors import ConfigError


def _chunk_bounds(n: int, seq_len: int) -> np.ndarray:
    """``seq_len + 1`` boundaries cutting ``range(n)`` into near-equal consecutive chunks (empty when n < seq_len)."""
    return (np.arange(seq_len + 1, dtype=np.int64) * n) // seq_len


def restricted_random_indices(n: int, seq_len: int, generator: torch.Generator | None = None) -> np.ndarray:
    """Training sampling: cut the tracklet into ``seq_len`` chunks and draw one random frame from each.

    With fewer frames than ``seq_len`` the empty chunks take the frame at their boundary, so frames repeat in
    temporal order.
    """
    _check(n, seq_len)
    bounds = _chunk_bounds(n, seq_len)
    sizes = np.maximum(bounds[1:] - bounds[:-1], 1)
    u = torch.rand(seq_len, generator=generator, dtype=torch.float64).numpy()
    return np.minimum(bounds[:-1] + (u * sizes).astype(np.int64), n - 1)


def restricted_random_padded_indices(n: int, seq_len: int, generator: torch.Generator | None = None) -> np.ndarray:
    """TF-CLIP's training sampling (``rrs_train``): chunks of ``ceil(n / seq_len)`` frames, the frame list padded
    with its last frame to fill the last chunks, one random frame per chunk. With fewer frames than ``seq_len``
    each chunk is one frame: the frames in order, then the last frame repeated."""
    _check(n, seq_len)
    size = 1 if n < seq_len else math.ceil(n / seq_len)
    u = torch.rand(seq_len, generator=generator, dtype=torch.float64).numpy()
    picks = np.arange(seq_len, dtype=np.int64) * size + (u * size).astype(np.int64)  # positions in the padded list
    return np.minimum(picks, n - 1)


def consecutive_random_indices(n: int, seq_len: int, generator: torch.Generator | None = None) -> np.ndarray:
    """Gao & Nevatia's training sampling (``sample='random'``): ``seq_len`` consecutive frames from a random start
    in ``0..max(0, n - seq_len - 1)`` (their bound, which never picks the last possible start), looped when the
    tracklet is shorter."""
    _check(n, seq_len)
    last_start = max(0, n - seq_len - 1)
    start = int(torch.randint(0, last_start + 1, (1,), generator=generator))
    run = np.arange(start, min(start + seq_len, n), dtype=np.int64)
    return np.resize(run, seq_len)  # np.resize repeats the run cyclically


def restricted_first_indices(n: int, seq_len: int) -> np.ndarray:
    """Test-time restricted sampling: the first frame of each chunk."""
    _check(n, seq_len)
    return np.minimum(_chunk_bounds(n, seq_len)[:-1], n - 1)


def evenly_spaced_indices(n: int, seq_len: int) -> np.ndarray:
    """``seq_len`` frames spread evenly from the first to the last."""
    _check(n, seq_len)
    return np.rint(np.linspace(0, n - 1, seq_len)).astype(np.int64)


def dense_clip_indices(n: int, seq_len: int) -> np.ndarray:
    """All consecutive ``seq_len``-frame clips, ``(num_clips, seq_len)``.

    A short last clip is padded by cycling its own frames (``[24, 25] -> [24, 25, 24, 25, ...]``), as TF-CLIP's
    and Gao & Nevatia's ``sample='dense'`` do it.
    """
    _check(n, seq_len)
    num_clips = math.ceil(n / seq_len)
    clips = np.arange(num_clips * seq_len, dtype=np.int64).reshape(num_clips, seq_len)
    last_start = (num_clips - 1) * seq_len
    tail = n - last_start  # frames of the last clip, 1..seq_len
    clips[-1] = last_start + np.arange(seq_len) % tail
    return clips


def sliding_windows(n: int, seq_len: int, stride: int) -> list[tuple[int, int]]:
    """TF-CLIP's iLIDS-VID training windows (``_pluckseq``): ``[start, start + seq_len)`` for every start in
    ``range(0, n - seq_len, stride)``, or the whole tracklet when that range is empty."""
    _check(n, seq_len)
    return [(start, start + seq_len) for start in range(0, n - seq_len, stride)] or [(0, n)]


def _check(n: int, seq_len: int) -> None:
    if n < 1:
        raise ValueError(f"a tracklet needs at least one frame, got {n}")
    if seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {seq_len}")


class IdentityBatchSampler(Sampler[int]):
    """P×K sampling: each batch holds ``num_ids`` identities with ``num_instances`` tracklets each.

    ``epoch="tracklets"`` (TF-CLIP's and CLIP-ReID's sampler): an epoch walks every identity's tracklets in groups
    of K (an identity with fewer than K tracklets is drawn with replacement), picking P identities at random among
    those with groups left. ``epoch="identities"`` (open-reid's, Gao & Nevatia's): an epoch draws one group of K
    per identity, identities in random order, P per batch (the last incomplete batch dropped). Under DDP each of
    ``num_replicas`` processes takes its contiguous share of every global batch, so the global batch is the
    same whatever the process count.
    """

    def __init__(self, pids: Sequence[int], num_ids: int = 4, num_instances: int = 4, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0, epoch: str = "tracklets") -> None:
        if num_ids < 1 or num_instances < 1:
            raise ConfigError(f"P and K must be >= 1, got P={num_ids}, K={num_instances}")
        batch = num_ids * num_instances
        if batch % num_replicas:
            raise ConfigError(
                f"the global batch P×K = {batch} does not split over {num_replicas} processes; "
                "choose P×K divisible by the process count"
            )
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        if len(self.index_by_pid) < num_ids:
            raise ConfigError(
                f"P = {num_ids} identities per batch but the training set has only {len(self.index_by_pid)}; "
                "lower num_ids_per_batch"
            )
        if epoch not in ("tracklets", "identities"):
            raise ConfigError(f"sampler.epoch={epoch!r}: use tracklets or identities")
        self.num_ids, self.num_instances, self.mode = num_ids, num_instances, epoch
        self.seed, self.epoch = seed, 0
        self.num_replicas, self.rank = num_replicas, rank
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """This epoch's batches of tracklet indices (deterministic for seed and epoch)."""
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self._draw_batches())
        return self._cache[1]

    def _draw_batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        k = self.num_instances
        if self.mode == "identities":
            return self._one_group_per_identity(generator)
        groups: dict[int, list[list[int]]] = {}
        for pid in sorted(self.index_by_pid):
            indices = self.index_by_pid[pid]
            if len(indices) < k:
                picks = torch.randint(len(indices), (k,), generator=generator).tolist()
                chosen = [indices[i] for i in picks]
            else:
                order = torch.randperm(len(indices), generator=generator).tolist()
                chosen = [indices[i] for i in order]
            groups[pid] = [chosen[i:i + k] for i in range(0, len(chosen) - k + 1, k)]
        batches: list[list[int]] = []
        while True:
            available = [pid for pid, g in groups.items() if g]
            if len(available) < self.num_ids:
                break
            picks = torch.randperm(len(available), generator=generator)[: self.num_ids].tolist()
            batch: list[int] = []
            for i in picks:
                batch.extend(groups[available[i]].pop())
            batches.append(batch)
        return batches

    def _one_group_per_identity(self, generator: torch.Generator) -> list[list[int]]:
        pids = sorted(self.index_by_pid)
        order = torch.randperm(len(pids), generator=generator).tolist()
        flat: list[int] = []
        for i in order:
            indices = self.index_by_pid[pids[i]]
            if len(indices) >= self.num_instances:
                picks = torch.randperm(len(indices), generator=generator)[: self.num_instances].tolist()
            else:
                picks = torch.randint(len(indices), (self.num_instances,), generator=generator).tolist()
            flat.extend(indices[p] for p in picks)
        size = self.num_ids * self.num_instances
        return [flat[start:start + size] for start in range(0, len(flat) - size + 1, size)]

    def __iter__(self) -> Iterator[int]:
        for index, _ in self.with_positions():
            yield index

    def with_positions(self) -> Iterator[tuple[int, int]]:
        """This process's (tracklet index, place in the epoch's global stream of samples) pairs."""
        size = self.num_ids * self.num_instances
        share = size // self.num_replicas
        for number, batch in enumerate(self.global_batches()):
            for offset in range(self.rank * share, (self.rank + 1) * share):
                yield batch[offset], number * size + offset

    def __len__(self) -> int:
        return len(self.global_batches()) * self.num_ids * self.num_instances // self.num_replicas


class SeededSampler(Sampler):
    """``IdentityBatchSampler``'s samples as ``(index, seed)``: each sample's augmentation seed depends only on the
    run's seed, the epoch and its place in the epoch's global stream, never on the process that loads it. So
    data-loader workers may persist across epochs, the number of workers changes nothing, a resumed run draws
    what an uninterrupted one would, and DDP processes augment their share of a global batch as one process
    would augment the whole batch."""

    def __init__(self, batches: IdentityBatchSampler, seed: int) -> None:
        self.batches, self.seed = batches, seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.batches.epoch
        for index, position in self.batches.with_positions():
            yield index, (self.seed * 1_000_003 + epoch) * 10_000_019 + position

    def __len__(self) -> int:
        return len(self.batches)
