"""evaluate_rank against a plain per-query implementation of the ranking definitions."""

from __future__ import annotations

import numpy as np
import pytest

from vreid_bench.errors import VreidError
from vreid_bench.metrics import RankResult, evaluate_rank
from vreid_bench.errors import MetricInputError, NoValidQueryError


def reference_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, q_scopes=None, g_scopes=None):
    """The definition, one query at a time: stable sort, remove, then read off CMC, AP and INP."""
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        if q_scopes is not None:
            keep &= g_scopes[order] == q_scopes[i]
        matches = (g_pids[order][keep] == q_pids[i]).astype(np.float64)
        if not matches.any():
            continue
        hit_ranks = np.flatnonzero(matches) + 1  # 1-based ranks of the true matches
        curve = np.zeros(max_rank)
        curve[hit_ranks[0] - 1 :] = 1.0
        cmcs.append(curve)
        aps.append(np.mean(np.arange(1, len(hit_ranks) + 1) / hit_ranks))
        inps.append(len(hit_ranks) / hit_ranks[-1])
    if not aps:
        return None
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(aps)


def random_problem(rng: np.random.Generator, integer_distances: bool):
    num_q = int(rng.integers(1, 12))
    num_g = int(rng.integers(1, 40))
    num_ids = int(rng.integers(1, 8))
    q_pids = rng.integers(1, num_ids + 1, num_q)
    g_pids = rng.integers(0, num_ids + 2, num_g)  # 0: distractors; num_ids + 1: never queried
    q_camids = rng.integers(0, 3, num_q)
    g_camids = rng.integers(0, 3, num_g)
    if integer_distances:  # heavy ties: only the gallery index can order them
        distmat = rng.integers(0, 4, (num_q, num_g)).astype(np.float32)
    else:
        distmat = rng.random((num_q, num_g))
    return distmat, q_pids, g_pids, q_camids, g_camids


def assert_matches_reference(result: RankResult, expected) -> None:
    cmc, mean_ap, mean_inp, num_valid = expected
    np.testing.assert_allclose(result.cmc, cmc, rtol=0, atol=1e-12)
    assert result.mAP == pytest.approx(mean_ap, abs=1e-12)
    assert result.mINP == pytest.approx(mean_inp, abs=1e-12)
    assert result.num_valid_queries == num_valid


@pytest.mark.parametrize("integer_distances", [False, True])
def test_matches_reference_on_random_problems(integer_distances: bool) -> None:
    rng = np.random.default_rng(1234 + integer_distances)
    checked = 0
    for _ in range(300):
        problem = random_problem(rng, integer_distances)
        max_rank = int(rng.integers(1, 60))  # often larger than the gallery
        expected = reference_rank(*problem, max_rank=max_rank)
        if expected is None:
            with pytest.raises(NoValidQueryError):
                evaluate_rank(*problem, max_rank=max_rank)
            continue
        result = evaluate_rank(*problem, max_rank=max_rank)
        assert_matches_reference(result, expected)
        assert result.num_valid_queries + result.num_skipped_queries == problem[0].shape[0]
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("integer_distances", [False, True])
def test_scopes_restrict_the_gallery(integer_distances: bool) -> None:
    rng = np.random.default_rng(99 + integer_distances)
    videos = np.array(["match_a", "match_b", "match_c"])
    checked = 0
    for _ in range(200):
        problem = random_problem(rng, integer_distances)
        q_scopes = videos[rng.integers(0, 3, problem[0].shape[0])]
        g_scopes = videos[rng.integers(0, 3, problem[0].shape[1])]
        expected = reference_rank(*problem, 20, q_scopes, g_scopes)
        if expected is None:
            continue
        result = evaluate_rank(*problem, max_rank=20, q_scopes=q_scopes, g_scopes=g_scopes)
        assert_matches_reference(result, expected)
        checked += 1
    assert checked > 100


def test_hand_computed_example() -> None:
    # Query pid 1, camera 0. Gallery by distance: [pid 1 cam 0 (removed), pid 2, pid 1 cam 1, pid 0, pid 1 cam 2]
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    result = evaluate_rank(distmat, [1], [1, 2, 1, 0, 1], [0], [0, 1, 1, 1, 2], max_rank=5)
    # after removal the matches sit at ranks 2 and 4
    np.testing.assert_allclose(result.cmc, [0, 1, 1, 1, 1])
    assert result.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result.mINP == pytest.approx(2 / 4)
    assert (result.num_valid_queries, result.num_skipped_queries) == (1, 0)


def test_ties_are_broken_by_gallery_index() -> None:
    distmat = np.zeros((1, 3))
    first = evaluate_rank(distmat, [1], [1, 2, 2], [0], [1, 1, 1], max_rank=3)
    last = evaluate_rank(distmat, [1], [2, 2, 1], [0], [1, 1, 1], max_rank=3)
    assert first.cmc[0] == 1.0 and first.mAP == 1.0
    assert last.cmc.tolist() == [0.0, 0.0, 1.0] and last.mAP == pytest.approx(1 / 3)


def test_queries_without_a_true_match_are_skipped_and_counted() -> None:
    distmat = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    # query 1 only has a same-camera match; query 2's identity is absent from the gallery
    result = evaluate_rank(distmat, [1, 2, 3], [1, 2], [0, 0, 0], [1, 0], max_rank=2)
    assert (result.num_valid_queries, result.num_skipped_queries) == (1, 2)
    assert result.mAP == 1.0


def test_no_valid_query_raises_a_user_error() -> None:
    with pytest.raises(NoValidQueryError, match="no query has a true match") as info:
        evaluate_rank(np.ones((2, 2)), [1, 2], [1, 2], [0, 0], [0, 0])
    assert isinstance(info.value, VreidError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("row", [0, 1])  # a query with a match, and a skipped one
def test_nan_distances_are_rejected(row: int) -> None:
    distmat = np.ones((2, 3), dtype=np.float32)
    distmat[row, 2] = np.nan
    with pytest.raises(MetricInputError, match=f"NaN distances.*row {row}"):
        evaluate_rank(distmat, [1, 5], [1, 2, 3], [0, 0], [1, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distmat": np.ones(3)}, "2-D"),
        ({"q_pids": [1]}, "q_pids has shape"),
        ({"g_camids": [0, 1]}, "g_camids has shape"),
        ({"max_rank": 0}, "max_rank=0"),
        ({"q_scopes": ["a", "b"]}, "only one of q_scopes/g_scopes"),
        ({"q_scopes": ["a"], "g_scopes": ["a", "b", "c"]}, "q_scopes has shape"),
    ],
)
def test_bad_inputs_name_the_problem(kwargs: dict, message: str) -> None:
    args = {
        "distmat": np.ones((2, 3)),
        "q_pids": [1, 2],
        "g_pids": [1, 2, 3],
        "q_camids": [0, 0],
        "g_camids": [1, 1, 1],
    }
    with pytest.raises(MetricInputError, match=message):
        evaluate_rank(**{**args, **kwargs})


def test_labels_of_any_kind_and_integer_distances() -> None:
    rng = np.random.default_rng(5)
    distmat = rng.integers(0, 3, (6, 20))
    q_pids = rng.integers(0, 4, 6)
    g_pids = rng.integers(0, 4, 20)
    q_cams = rng.integers(0, 2, 6)
    g_cams = rng.integers(0, 2, 20)
    as_ints = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    as_strings = evaluate_rank(
        distmat.astype(np.float32),
        np.char.add("id", q_pids.astype(str)),
        np.char.add("id", g_pids.astype(str)),
        np.array(["c1", "c2"])[q_cams],
        np.array(["c1", "c2"])[g_cams],
        max_rank=10,
    )
    np.testing.assert_array_equal(as_ints.cmc, as_strings.cmc)
    assert as_ints.mAP == as_strings.mAP and as_ints.mINP == as_strings.mINP
    assert_matches_reference(as_ints, reference_rank(distmat, q_pids, g_pids, q_cams, g_cams, 10))


def test_result_is_immutable() -> None:
    result = evaluate_rank(np.array([[0.5]]), [1], [1], [0], [1], max_rank=3)
    np.testing.assert_array_equal(result.cmc, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        result.cmc[0] = 0.0


def reference_trapezoid_ap(ranked_good: np.ndarray) -> float:
    """Precision integrated over recall with trapezoids, written from the definition: walk the ranked list of
    valid items (1 = true match), and for each step add (recall gain) × (precision before + precision after) / 2,
    the precision before the first item being 1."""
    total = ranked_good.sum()
    area, recall, precision, hits = 0.0, 0.0, 1.0, 0
    for position, good in enumerate(ranked_good, start=1):
        hits += int(good)
        new_recall, new_precision = hits / total, hits / position
        area += (new_recall - recall) * (precision + new_precision) / 2
        recall, precision = new_recall, new_precision
    return area


def reference_with_junk(distmat, q_pids, g_pids, q_camids, g_camids, trapezoid: bool):
    """Per query AP and first-match rank; junk is same identity and camera, and identity -1 everywhere."""
    aps, firsts = [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        junk = ((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])) | (g_pids[order] == -1)
        good = (g_pids[order][~junk] == q_pids[i]).astype(np.int64)
        if not good.any():
            aps.append(np.nan)
            firsts.append(0)
            continue
        hit_ranks = np.flatnonzero(good) + 1
        aps.append(reference_trapezoid_ap(good) if trapezoid else float(np.mean(np.arange(1, len(hit_ranks) + 1)
                                                                              / hit_ranks)))
        firsts.append(int(hit_ranks[0]))
    return np.array(aps), np.array(firsts)


def mars_shaped_problem(rng: np.random.Generator):
    """Every test tracklet is in the gallery (the queries among them), with distractors (0) and junk (-1)."""
    num_g, num_ids = int(rng.integers(20, 120)), int(rng.integers(2, 12))
    g_pids = rng.integers(-1, num_ids + 1, num_g)
    g_camids = rng.integers(0, 6, num_g)
    candidates = np.flatnonzero(g_pids >= 1)
    queries = rng.choice(candidates, size=min(len(candidates), int(rng.integers(1, 15))), replace=False)
    heavy_ties = rng.random() < 0.5
    distmat = (rng.integers(0, 5, (len(queries), num_g)).astype(np.float32) if heavy_ties
               else rng.random((len(queries), num_g)))
    return distmat, g_pids[queries], g_pids, g_camids[queries], g_camids


@pytest.mark.parametrize("ap", ["trapezoid", "plain"])
def test_both_ap_definitions_match_their_definition_with_junk_and_distractors(ap):
    rng = np.random.default_rng(7 if ap == "trapezoid" else 8)
    checked = 0
    for _ in range(120):
        distmat, q_pids, g_pids, q_camids, g_camids = mars_shaped_problem(rng)
        aps, firsts = reference_with_junk(distmat, q_pids, g_pids, q_camids, g_camids, ap == "trapezoid")
        valid = firsts > 0
        if not valid.any():
            continue
        result = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, ap=ap)
        assert result.mAP == pytest.approx(float(np.mean(aps[valid])), abs=1e-6)
        np.testing.assert_allclose(result.query_ap, aps, rtol=0, atol=1e-9)  # per query, NaN for the skipped
        np.testing.assert_array_equal(result.query_first_rank, firsts)
        expected_cmc = [(firsts[valid] <= k).mean() for k in range(1, 51)]
        np.testing.assert_array_equal(result.cmc, expected_cmc)  # CMC exact
        checked += 1
    assert checked >= 50


def test_trapezoid_ap_of_known_rankings():
    # Matches at ranks 1 and 3 of 2 matches: (1 + 1)/2 · 1/2 + (1/2 + 2/3)/2 · 1/2 = 0.7917 (plain: 0.8333).
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]])
    args = (np.array([1]), np.array([1, 2, 1, 2]), np.array([0]), np.array([1, 1, 1, 1]))
    assert evaluate_rank(distmat, args[0], args[1], args[2], args[3], ap="trapezoid").mAP == pytest.approx(
        0.25 * 2 + 0.25 * (0.5 + 2 / 3))
    assert evaluate_rank(distmat, *args, ap="plain").mAP == pytest.approx((1 + 2 / 3) / 2)
    with pytest.raises(MetricInputError, match="plain, trapezoid"):
        evaluate_rank(distmat, *args, ap="area")


def test_junk_identity_is_removed_from_every_ranking():
    distmat = np.array([[0.1, 0.2, 0.3]])
    junk_first = evaluate_rank(distmat, np.array([1]), np.array([-1, 1, 2]), np.array([0]), np.array([1, 1, 1]))
    assert junk_first.cmc[0] == 1.0 and junk_first.mAP == 1.0  # the -1 item ahead of the match does not count
    as_negative = evaluate_rank(distmat, np.array([1]), np.array([0, 1, 2]), np.array([0]), np.array([1, 1, 1]))
    assert as_negative.cmc[0] == 0.0 and as_negative.mAP == 0.5  # a distractor (0) does
