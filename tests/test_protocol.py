import dataclasses

import pytest

from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.protocol import PRESETS, Protocol, get_protocol
from vreid_bench.recipe import Recipe


def test_presets_are_the_literatures_evaluations():
    mars = get_protocol("all-tracklets")
    assert (mars.test_sampling, mars.distance, mars.gallery, mars.ap, mars.max_rank) == (
        "dense", "euclidean", "query+gallery", "plain", 50)
    assert get_protocol("mars-official") == dataclasses.replace(mars, name="mars-official", ap="trapezoid")
    assert get_protocol("gallery-only").gallery == "gallery"
    video = get_protocol("video-scope")
    assert (video.gallery, video.gallery_scope) == ("gallery", "video")


def test_protocol_holds_evaluation_settings_only():
    fields = {f.name for f in dataclasses.fields(Protocol)}
    training = {f.name for f in dataclasses.fields(Recipe)} | {"height", "width", "seq_len", "mean", "std",
                                                              "num_ids_per_batch", "flip_p", "erasing_p"}
    assert not fields & (training - {"name"})


def test_hash_is_stable_across_releases():
    # A change here silently splits every leaderboard: change a preset only on purpose, with a new name.
    assert {name: p.hash() for name, p in PRESETS.items()} == {
        "all-tracklets": "4241f51d9177", "mars-official": "fb8e178405db", "gallery-only": "7f69e65ba8dc",
        "video-scope": "7303f2758d55"}


def test_hash_ignores_the_name_and_sees_every_setting():
    p = get_protocol("all-tracklets")
    assert dataclasses.replace(p, name="copy").hash() == p.hash()
    alternatives = {"test_sampling": "evenly", "distance": "cosine", "normalize_features": False, "gallery": "gallery",
                    "ap": "trapezoid", "max_rank": 20, "gallery_scope": "video", "rerank": True, "rerank_k1": 30,
                    "rerank_k2": 3, "rerank_lambda": 0.5, "split": 3}
    assert set(alternatives) == {f.name for f in dataclasses.fields(Protocol)} - {"name"}
    for key, value in alternatives.items():
        assert dataclasses.replace(p, **{key: value}).hash() != p.hash(), key


def test_the_split_is_part_of_the_hash_but_not_of_the_family():
    p = get_protocol("gallery-only")
    splits = [p.with_split(k) for k in range(10)]
    assert len({s.hash() for s in splits}) == 10
    assert {s.family_hash() for s in splits} == {p.family_hash()}
    assert p.with_split(2).family_hash() != get_protocol("all-tracklets").with_split(2).family_hash()


def test_presets_differ_where_they_should():
    assert len({p.hash() for p in PRESETS.values()}) == len(PRESETS)


def test_round_trip_through_a_dict():
    p = get_protocol("video-scope").with_split(4)
    data = p.to_dict()
    assert data["hash"] == p.hash() and data["family_hash"] == p.family_hash()
    assert Protocol.from_dict(data) == p


def test_unknown_protocol_names_the_choices():
    with pytest.raises(UnknownNameError, match="all-tracklets, mars-official, gallery-only, video-scope"):
        get_protocol("nope")


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="max_rank=0"):
        Protocol(name="x", max_rank=0)
    with pytest.raises(ConfigError, match="rerank_lambda"):
        Protocol(name="x", rerank_lambda=2.0)
