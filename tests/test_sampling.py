import numpy as np
import pytest
import torch

from vreid_bench.errors import ConfigError
from vreid_bench.sampling import (
    IdentityBatchSampler,
    consecutive_random_indices,
    dense_clip_indices,
    evenly_spaced_indices,
    restricted_first_indices,
    restricted_random_indices,
    restricted_random_padded_indices,
    sliding_windows,
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


def _reference_rrs_train(n: int, seq_len: int, draw) -> list[int]:
    """TF-CLIP's ``sample='rrs_train'`` written out from its video_loader: ceil(n / S) chunks of a padded list."""
    if n < seq_len:
        strip = list(range(n)) + [n - 1] * (seq_len - n)
        chunks = [strip[s:s + 1] for s in range(seq_len)]
    else:
        size = -(-n // seq_len)
        strip = list(range(n)) + [n - 1] * (size * seq_len - n)
        chunks = [strip[size * s:size * (s + 1)] for s in range(seq_len)]
    return [chunk[draw(len(chunk))] for chunk in chunks]


@pytest.mark.parametrize("n", [1, 3, 8, 9, 27, 64])
def test_padded_restricted_random_draws_what_tf_clips_sampler_can(n):
    generator = torch.Generator().manual_seed(n)
    seen = [set() for _ in range(8)]
    for _ in range(400):
        for position, index in enumerate(restricted_random_padded_indices(n, 8, generator)):
            seen[position].add(int(index))
    possible = [set() for _ in range(8)]
    size = 1 if n < 8 else -(-n // 8)
    for offset in range(size):
        for position, index in enumerate(_reference_rrs_train(n, 8, lambda length: min(offset, length - 1))):
            possible[position].add(index)
    assert seen == possible  # e.g. n = 27: the last chunk is [26, 26, 26, 26], the one before [24, 25, 26, 26]


def test_consecutive_random_is_a_run_from_a_start_below_n_minus_len():
    generator = torch.Generator().manual_seed(0)
    starts = {int(consecutive_random_indices(10, 4, generator)[0]) for _ in range(300)}
    assert starts == set(range(0, 6))  # Gao & Nevatia's randint(0, n - S - 1): start 6 is never drawn
    run = consecutive_random_indices(10, 4, generator)
    np.testing.assert_array_equal(run, np.arange(run[0], run[0] + 4))
    np.testing.assert_array_equal(consecutive_random_indices(3, 8, generator), [0, 1, 2, 0, 1, 2, 0, 1])


def test_sliding_windows_follow_tf_clips_iLIDS_VID_samples():
    assert sliding_windows(20, 8, 4) == [(0, 8), (4, 12), (8, 16)]  # range(0, n - S, stride): 12 excluded
    assert sliding_windows(8, 8, 4) == [(0, 8)] and sliding_windows(5, 8, 4) == [(0, 5)]


def test_restricted_first_takes_the_first_frame_of_each_chunk():
    np.testing.assert_array_equal(restricted_first_indices(10, 4), [0, 2, 5, 7])
    np.testing.assert_array_equal(restricted_first_indices(2, 4), [0, 0, 1, 1])


def test_evenly_spaced_spans_first_to_last():
    np.testing.assert_array_equal(evenly_spaced_indices(15, 8), [0, 2, 4, 6, 8, 10, 12, 14])
    np.testing.assert_array_equal(evenly_spaced_indices(1, 3), [0, 0, 0])


def test_dense_clips_cover_every_frame_and_pad_the_last():
    np.testing.assert_array_equal(dense_clip_indices(10, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]])
    np.testing.assert_array_equal(dense_clip_indices(8, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(dense_clip_indices(2, 4), [[0, 1, 0, 1]])
    np.testing.assert_array_equal(dense_clip_indices(9, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 8, 8, 8]])


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


def test_an_identities_epoch_draws_one_group_per_identity():
    pids = _pids()
    sampler = IdentityBatchSampler(pids, num_ids=2, num_instances=4, seed=3, epoch="identities")
    batches = sampler.global_batches()
    assert len(batches) == 3  # 6 identities, 2 per batch: open-reid's epoch is one group of K per identity
    drawn = [pids[i] for batch in batches for i in batch]
    assert sorted(set(drawn)) == list(range(6)) and all(drawn.count(p) == 4 for p in range(6))
    with pytest.raises(ConfigError, match="tracklets or identities"):
        IdentityBatchSampler(pids, 2, 2, epoch="frames")


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
