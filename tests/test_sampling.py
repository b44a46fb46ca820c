import numpy as np
import pytest
import torch

from vreid_bench.errors import ConfigError
from vreid_bench.sampling import (
    IdentityBatchSampler,
    dense_clip_indices,
    evenly_spaced_indices,
    restricted_first_indices,
    restricted_random_indices,
)


def test_restricted_random_draws_one_frame_from_each_chunk():
    # 10 frames in 4 chunks: [0, 2), [2, 5), [5, 7), [7, 10)
    chunks = [range(0, 2), range(2, 5), range(5, 7), range(7, 10)]
    generator = torch.Generator().manual_seed(0)
    seen = [set() for _ in chunks]
    for _ in range(300):
        indices = restricted_random_indices(10, 4, generator)
        for position, (index, chunk) in enumerate(zip(indices, chunks)):
            assert index in chunk
            seen[position].add(int(index))
    assert [sorted(s) for s in seen] == [list(c) for c in chunks]  # every frame of a chunk can be drawn


def test_restricted_random_is_reproducible_for_a_generator_seed():
    a = restricted_random_indices(100, 8, torch.Generator().manual_seed(3))
    b = restricted_random_indices(100, 8, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(a, b)


def test_short_tracklet_repeats_frames_in_order():
    indices = restricted_random_indices(3, 8, torch.Generator().manual_seed(0))
    assert len(indices) == 8 and indices.min() >= 0 and indices.max() <= 2
    assert np.all(np.diff(indices) >= 0)
    assert set(indices.tolist()) == {0, 1, 2}


def test_restricted_first_takes_the_first_frame_of_each_chunk():
    np.testing.assert_array_equal(restricted_first_indices(10, 4), [0, 2, 5, 7])
    np.testing.assert_array_equal(restricted_first_indices(2, 4), [0, 0, 1, 1])


def test_evenly_spaced_spans_first_to_last():
    np.testing.assert_array_equal(evenly_spaced_indices(15, 8), [0, 2, 4, 6, 8, 10, 12, 14])
    np.testing.assert_array_equal(evenly_spaced_indices(1, 3), [0, 0, 0])


def test_dense_clips_cover_every_frame_and_pad_the_last():
    np.testing.assert_array_equal(dense_clip_indices(10, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]])
    np.testing.assert_array_equal(dense_clip_indices(8, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(dense_clip_indices(2, 4), [[0, 1, 1, 1]])


def test_bad_lengths_are_rejected():
    with pytest.raises(ValueError):
        dense_clip_indices(0, 4)
    with pytest.raises(ConfigError):
        evenly_spaced_indices(5, 0)


def _pids():
    # 6 identities with 1..6 tracklets each
    return [pid for pid in range(6) for _ in range(pid + 1)]


def test_identity_batches_hold_p_identities_times_k_tracklets():
    pids = _pids()
    sampler = IdentityBatchSampler(pids, num_ids=3, num_instances=2, seed=1)
    batches = sampler.global_batches()
    assert batches and len(list(sampler)) == len(sampler) == 6 * len(batches)
    for batch in batches:
        assert len(batch) == 6
        batch_pids = [pids[i] for i in batch]
        assert len(set(batch_pids)) == 3
        assert all(batch_pids.count(p) == 2 for p in set(batch_pids))


def test_identity_with_fewer_than_k_tracklets_is_drawn_with_replacement():
    sampler = IdentityBatchSampler([0, 1, 1, 1, 1], num_ids=2, num_instances=4, seed=0)
    (batch,) = sampler.global_batches()
    assert batch.count(0) == 4


def test_identity_batches_are_reproducible_and_change_with_the_epoch():
    a = IdentityBatchSampler(_pids(), 2, 2, seed=5)
    b = IdentityBatchSampler(_pids(), 2, 2, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_ddp_shares_concatenate_to_the_single_process_batch():
    pids = _pids()
    single = IdentityBatchSampler(pids, 2, 4, seed=7)
    ranks = [list(IdentityBatchSampler(pids, 2, 4, seed=7, num_replicas=2, rank=r)) for r in range(2)]
    glued = []
    for step in range(len(ranks[0]) // 4):
        glued += ranks[0][step * 4:(step + 1) * 4] + ranks[1][step * 4:(step + 1) * 4]
    assert glued == list(single)


def test_sampler_rejects_impossible_batches():
    with pytest.raises(ConfigError, match="only 2"):
        IdentityBatchSampler([0, 1], num_ids=4, num_instances=2)
    with pytest.raises(ConfigError, match="divisible"):
        IdentityBatchSampler(_pids(), num_ids=3, num_instances=1, num_replicas=2)
