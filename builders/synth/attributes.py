"""Who is in a synthetic video: each identity's look, both as drawing parameters and as caption phrases.

The phrases are the ground truth a template captioner turns into sentences ("short black hair", "white shoes",
"a black wristband on the left wrist"), so every phrase names something the renderer really draws.

Identities are made hard to tell apart on purpose. All start from one template look and re-draw only some of
their attributes: ``similarity`` 1.0 re-draws the fewest (teammates differ by their number, dancers by one
detail), 0.0 re-draws all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

RGB = tuple[int, int, int]
Side = Literal["left", "right"]
AccessoryKind = Literal["headband", "wristband", "knee sleeve", "arm sleeve"]
HairStyle = Literal["short", "buzzed", "curly", "long", "ponytail", "bun", "shaved"]
SockLength = Literal["ankle", "crew", "knee-high"]
SleeveLength = Literal["short", "none"]
LegLength = Literal["shorts", "capri"]


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: RGB


@dataclass(frozen=True)
class Build:
    phrase: str
    height_scale: float  # stature relative to the 1.8 m reference
    width_scale: float  # limb and torso width relative to an average build


@dataclass(frozen=True)
class Accessory:
    kind: AccessoryKind
    colour: Colour
    side: Side  # the wearer's own side; ignored for a headband

    @property
    def phrase(self) -> str:
        where = {
            "headband": "",
            "wristband": f" on the {self.side} wrist",
            "knee sleeve": f" on the {self.side} knee",
            "arm sleeve": f" on the {self.side} arm",
        }[self.kind]
        return f"a {self.colour.name} {self.kind}{where}"


@dataclass(frozen=True)
class Outfit:
    """What a whole team, or a whole dance troupe, wears."""

    top: Colour
    bottom: Colour
    sleeves: SleeveLength
    legs: LegLength
    number_colour: RGB  # jersey numbers; unused by costumes
    phrase: str  # sports: the jersey colour ("red"); dance: the costume ("a black T-shirt and black shorts")


@dataclass(frozen=True)
class Look:
    """The attributes an identity is told apart by; ``outfit`` and ``number`` come from its team."""

    hair_colour: Colour
    hair_style: HairStyle
    skin: Colour
    shoes: Colour
    socks: Colour
    sock_length: SockLength
    build: Build
    accessories: tuple[Accessory, ...]


@dataclass(frozen=True)
class Identity:
    track_id: int  # 1-based, local to the video
    look: Look
    outfit: Outfit
    team: str | None  # "home" / "away" for sports
    number: int | None  # jersey number for sports

    def sheet(self) -> dict[str, object]:
        """The attribute sheet written to ``attributes.json``: short phrases a caption can use verbatim."""
        sheet: dict[str, object] = {}
        if self.team is not None:
            sheet["team"] = self.team
            sheet["jersey_color"] = self.outfit.phrase
            sheet["jersey_number"] = str(self.number)
        else:
            sheet["costume"] = self.outfit.phrase
        return {**sheet, **look_phrases(self.look)}


def look_phrases(look: Look) -> dict[str, object]:
    """What can be seen of a look, in words; two looks with the same phrases are drawn alike."""
    return {
        "hair": hair_phrase(look.hair_style, look.hair_colour),
        "skin_tone": look.skin.name,
        "shoes": f"{look.shoes.name} shoes",
        "socks": f"{look.socks.name} {look.sock_length} socks",
        "build": look.build.phrase,
        "accessories": [accessory.phrase for accessory in look.accessories],
    }


def _colours(*pairs: tuple[str, RGB]) -> tuple[Colour, ...]:
    return tuple(Colour(name, rgb) for name, rgb in pairs)


HAIR_COLOURS = _colours(
    ("black", (22, 19, 19)), ("dark brown", (52, 33, 24)), ("brown", (105, 68, 40)),
    ("blond", (205, 170, 95)), ("red", (150, 62, 28)), ("grey", (150, 148, 145)),
)
HAIR_STYLES: tuple[HairStyle, ...] = ("short", "buzzed", "curly", "long", "ponytail", "bun", "shaved")
SKIN_TONES = _colours(
    ("light skin", (241, 206, 180)), ("fair skin", (226, 186, 150)), ("medium skin", (198, 150, 110)),
    ("tan skin", (170, 120, 80)), ("brown skin", (128, 84, 55)), ("dark brown skin", (88, 57, 38)),
)
SHOE_COLOURS = _colours(
    ("white", (238, 238, 236)), ("black", (24, 24, 26)), ("red", (200, 30, 35)),
    ("neon yellow", (215, 240, 40)), ("blue", (35, 75, 190)), ("grey", (128, 130, 134)),
    ("orange", (240, 120, 25)),
)
SOCK_COLOURS = _colours(
    ("white", (236, 236, 234)), ("black", (26, 26, 28)), ("grey", (140, 142, 146)),
    ("navy", (30, 40, 90)), ("red", (190, 35, 40)),
)
SOCK_LENGTHS: tuple[SockLength, ...] = ("ankle", "crew", "knee-high")
BUILDS = (
    Build("slim build", 1.0, 0.86), Build("average build", 1.0, 1.0), Build("broad build", 1.0, 1.14),
    Build("tall slim build", 1.07, 0.9), Build("tall broad build", 1.07, 1.12),
    Build("short stocky build", 0.93, 1.14),
)
ACCESSORY_KINDS: tuple[AccessoryKind, ...] = ("headband", "wristband", "knee sleeve", "arm sleeve")
ACCESSORY_COLOURS = _colours(
    ("white", (240, 240, 238)), ("black", (22, 22, 24)), ("red", (205, 30, 40)), ("blue", (35, 80, 200)),
    ("yellow", (240, 205, 30)),
)
JERSEY_COLOURS = _colours(
    ("red", (196, 28, 40)), ("blue", (28, 68, 178)), ("white", (236, 236, 234)), ("yellow", (242, 200, 28)),
    ("green", (22, 128, 62)), ("black", (28, 28, 32)), ("orange", (238, 118, 22)), ("purple", (108, 48, 150)),
)
COSTUMES = (
    Outfit(Colour("black", (26, 26, 30)), Colour("black", (26, 26, 30)), "short", "shorts", (0, 0, 0),
           "a black T-shirt and black shorts"),
    Outfit(Colour("white", (232, 232, 230)), Colour("black", (26, 26, 30)), "short", "shorts", (0, 0, 0),
           "a white T-shirt and black shorts"),
    Outfit(Colour("black", (26, 26, 30)), Colour("black", (26, 26, 30)), "none", "capri", (0, 0, 0),
           "a black tank top and black cropped leggings"),
    Outfit(Colour("red", (190, 30, 40)), Colour("black", (26, 26, 30)), "short", "capri", (0, 0, 0),
           "a red T-shirt and black cropped leggings"),
    Outfit(Colour("grey", (140, 140, 145)), Colour("grey", (120, 120, 125)), "short", "shorts", (0, 0, 0),
           "a grey T-shirt and grey shorts"),
)
LOOK_FIELDS = ("hair_colour", "hair_style", "skin", "shoes", "socks", "sock_length", "build", "accessories")
MAX_JERSEY_NUMBER = 99


def hair_phrase(style: HairStyle, colour: Colour) -> str:
    return {
        "short": f"short {colour.name} hair",
        "buzzed": f"buzzed {colour.name} hair",
        "curly": f"short curly {colour.name} hair",
        "long": f"long {colour.name} hair",
        "ponytail": f"{colour.name} hair in a ponytail",
        "bun": f"{colour.name} hair in a bun",
        "shaved": "a shaved head",
    }[style]


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _random_accessories(rng: np.random.Generator) -> tuple[Accessory, ...]:
    count = int(rng.choice(3, p=(0.45, 0.4, 0.15)))
    kinds = rng.choice(len(ACCESSORY_KINDS), size=count, replace=False)
    sides: tuple[Side, Side] = ("left", "right")
    return tuple(
        Accessory(ACCESSORY_KINDS[int(k)], _pick(rng, ACCESSORY_COLOURS), sides[int(rng.integers(2))])
        for k in sorted(kinds)
    )


def _random_field(field: str, rng: np.random.Generator) -> object:
    match field:
        case "hair_colour":
            return _pick(rng, HAIR_COLOURS)
        case "hair_style":
            return _pick(rng, HAIR_STYLES)
        case "skin":
            return _pick(rng, SKIN_TONES)
        case "shoes":
            return _pick(rng, SHOE_COLOURS)
        case "socks":
            return _pick(rng, SOCK_COLOURS)
        case "sock_length":
            return _pick(rng, SOCK_LENGTHS)
        case "build":
            return _pick(rng, BUILDS)
        case "accessories":
            return _random_accessories(rng)
    raise ValueError(f"unknown look field {field!r}")


def random_look(rng: np.random.Generator) -> Look:
    return Look(**{field: _random_field(field, rng) for field in LOOK_FIELDS})


def _redraw_count(similarity: float, minimum: int) -> int:
    return max(minimum, int(round((1.0 - similarity) * len(LOOK_FIELDS))))


def _variant(template: Look, count: int, rng: np.random.Generator) -> Look:
    """The template with ``count`` of its fields re-drawn, each to a value that shows (a shaved head has no
    hair colour to change)."""
    fields = rng.choice(len(LOOK_FIELDS), size=min(count, len(LOOK_FIELDS)), replace=False)
    look = template
    for index in sorted(fields):
        field = LOOK_FIELDS[int(index)]
        for _ in range(50):  # some changes cannot show; after this many draws, leave the field as it is
            candidate = replace(look, **{field: _random_field(field, rng)})
            if look_phrases(candidate) != look_phrases(look):
                look = candidate
                break
    return look


def distinct_looks(template: Look, count: int, similarity: float, minimum_changes: int,
                   rng: np.random.Generator) -> list[Look]:
    """``count`` looks varied around ``template``; with ``minimum_changes`` >= 1 no two are described alike.

    Sports teams pass 0 (a jersey number already tells teammates apart, so at similarity 1.0 they look alike
    otherwise); dancers pass 1.
    """
    changes = _redraw_count(similarity, minimum_changes)
    looks: list[Look] = []
    seen: list[dict[str, object]] = []
    repeats = 0
    while len(looks) < count:
        look = _variant(template, changes, rng) if changes else template
        phrases = look_phrases(look)
        if minimum_changes == 0 or phrases not in seen:
            looks.append(look)
            seen.append(phrases)
            continue
        repeats += 1
        if repeats % 20 == 0 and changes < len(LOOK_FIELDS):
            changes += 1  # the looks this many changes give are used up; allow one more
    return looks


def _team_outfits(rng: np.random.Generator) -> tuple[Outfit, Outfit]:
    first, second = rng.choice(len(JERSEY_COLOURS), size=2, replace=False)
    return tuple(_jersey(JERSEY_COLOURS[int(i)]) for i in (first, second))  # type: ignore[return-value]


def _jersey(colour: Colour) -> Outfit:
    dark = sum(colour.rgb) < 420
    bottom = Colour(colour.name, tuple(int(c * 0.8) for c in colour.rgb))  # type: ignore[arg-type]
    return Outfit(colour, bottom, "short", "shorts", (245, 245, 245) if dark else (20, 24, 40), colour.name)


def team_sizes(people: int) -> tuple[int, int]:
    return (people + 1) // 2, people // 2


def sports_identities(people: int, similarity: float, rng: np.random.Generator) -> list[Identity]:
    """Two teams, home first; ids are 1-based in that order."""
    template = random_look(rng)  # shared by both teams, so that only the jersey colour sets them apart
    identities: list[Identity] = []
    for team, outfit, size in zip(("home", "away"), _team_outfits(rng), team_sizes(people)):
        numbers = rng.choice(np.arange(MAX_JERSEY_NUMBER + 1), size=size, replace=False)
        for look, number in zip(distinct_looks(template, size, similarity, 0, rng), numbers):
            identities.append(Identity(len(identities) + 1, look, outfit, team, int(number)))
    return identities


def dance_identities(people: int, similarity: float, rng: np.random.Generator) -> list[Identity]:
    """One costume for everybody; every dancer differs from every other in at least one attribute."""
    costume = _pick(rng, COSTUMES)
    looks = distinct_looks(random_look(rng), people, similarity, 1, rng)
    return [Identity(i + 1, look, costume, None, None) for i, look in enumerate(looks)]
