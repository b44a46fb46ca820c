import dataclasses

import pytest

from vreid_bench.errors import UnknownNameError
from vreid_bench.protocol import PRESETS, Protocol, get_protocol


def test_default_protocol_has_the_documented_settings():
    p = get_protocol("vreid-p1")
    assert (p.height, p.width, p.seq_len) == (256, 128, 8)
    assert (p.num_ids_per_batch, p.num_tracklets_per_id) == (4, 4)
    assert (p.train_sampling, p.test_sampling, p.distance) == ("restricted_random", "dense", "euclidean")
    assert (p.gallery, p.gallery_scope, p.max_rank) == ("gallery", "all", 50)


def test_hash_is_stable_across_releases():
    # A change here silently splits every leaderboard: change a preset only on purpose, with a new name.
    assert get_protocol("vreid-p1").hash() == "917adf261ff0"
    assert get_protocol("vreid-p1-video").hash() == "e991bfd04414"
    assert get_protocol("tfclip-mars").hash() == "ba4c65d8c9bf"


def test_hash_ignores_the_name_and_sees_every_setting():
    p = get_protocol("vreid-p1")
    assert dataclasses.replace(p, name="copy").hash() == p.hash()
    for field in dataclasses.fields(Protocol):
        if field.name in ("name", "mean", "std"):
            continue
        value = getattr(p, field.name)
        changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v / 2 + 0.1,
                   str: lambda v: v + "x"}[type(value)](value)
        assert dataclasses.replace(p, **{field.name: changed}).hash() != p.hash(), field.name


def test_presets_differ_where_they_should():
    assert len({p.hash() for p in PRESETS.values()}) == len(PRESETS)
    assert get_protocol("tfclip-mars").gallery == "query+gallery"
    assert get_protocol("vreid-p1-video").gallery_scope == "video"


def test_round_trip_through_a_dict():
    p = get_protocol("vreid-p1-video")
    data = p.to_dict()
    assert data["hash"] == p.hash()
    data["mean"] = list(data["mean"])  # as JSON gives it back
    assert Protocol.from_dict(data) == p


def test_unknown_protocol_names_the_choices():
    with pytest.raises(UnknownNameError, match="vreid-p1"):
        get_protocol("nope")
