import numpy as np
import pytest

from vreid_bench.data import Tracklet
from vreid_bench.errors import ConfigError, NoValidQueryError
from vreid_bench.evaluation import evaluate_features
from vreid_bench.protocol import apply_protocol_overrides, get_protocol


def _t(pid, camid, video=None):
    return Tracklet(frames=("f.jpg",), pid=pid, camid=camid, video=video)


def test_query_union_gallery_is_only_used_when_the_protocol_says_so():
    # Query 0 (pid 1) has its only true match among the other queries, none in the gallery.
    query = [_t(1, 0), _t(1, 1)]
    gallery = [_t(2, 1), _t(3, 1)]
    q = np.array([[1.0, 0.0], [0.9, 0.1]])
    g = np.array([[0.0, 1.0], [0.5, 0.5]])
    with pytest.raises(NoValidQueryError):
        evaluate_features(q, g, query, gallery, get_protocol("gallery-only"))
    union = evaluate_features(q, g, query, gallery, get_protocol("all-tracklets"))
    # each query now finds the other query (another camera) first; itself is removed (same pid and camera)
    assert union.num_valid_queries == 2 and union.cmc[0] == 1.0


def test_video_scope_ranks_each_query_within_its_own_video():
    query = [_t(0, 0, "a")]
    gallery = [_t(1, 1, "b"), _t(0, 1, "a"), _t(2, 1, "a")]
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [0.6, 0.4], [0.0, 1.0]])  # the closest tracklet is from another video
    everywhere = evaluate_features(q, g, query, gallery, get_protocol("gallery-only"))
    scoped = evaluate_features(q, g, query, gallery, get_protocol("video-scope"))
    assert everywhere.cmc[0] == 0.0 and everywhere.cmc[1] == 1.0
    assert scoped.cmc[0] == 1.0


def test_video_scope_needs_videos():
    with pytest.raises(ConfigError, match="gallery-only"):
        evaluate_features(np.ones((1, 2)), np.ones((1, 2)), [_t(0, 0)], [_t(0, 1)], get_protocol("video-scope"))


def test_rerank_protocol_changes_the_distances_not_the_bookkeeping():
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(10), 4)
    feats = rng.normal(size=(10, 16))[pids] + 0.5 * rng.normal(size=(40, 16))
    tracklets = [_t(int(p), i % 2) for i, p in enumerate(pids)]
    query, gallery = tracklets[::4], [t for i, t in enumerate(tracklets) if i % 4]
    qf, gf = feats[::4], np.delete(feats, np.s_[::4], axis=0)
    base = evaluate_features(qf, gf, query, gallery, get_protocol("gallery-only"))
    rerank = evaluate_features(qf, gf, query, gallery,
                               apply_protocol_overrides(get_protocol("gallery-only"), {"rerank": True}))
    assert rerank.num_valid_queries == base.num_valid_queries == 10
    assert 0.0 < rerank.mAP <= 1.0


def test_feature_count_must_match_the_tracklets():
    with pytest.raises(ValueError, match="query features"):
        evaluate_features(np.ones((2, 2)), np.ones((1, 2)), [_t(0, 0)], [_t(0, 1)], get_protocol("gallery-only"))
