"""The attribute statements a caption makes, read from its words: hair, skin, shoes, socks, team colour, number.

One reader serves every caption and every captioner: the template's sentences, a multimodal model's free text,
a person's reviewed caption, and the ground truth of synthetic footage (its attribute sheet rendered as the
template renders it), so a caption and its truth are compared slot by slot in the same terms.

Each slot holds the set of values a caption states for it (usually one): ``hair`` its style and colour words
("short curly dark brown", "black ponytail", "shaved"), ``skin`` the tone ("dark brown"), ``shoes`` the colour,
``socks`` colour and length ("navy crew"), ``team`` the jersey colour, ``number`` the jersey number, ``build``
("tall slim"), ``costume`` the colour and kind of top ("black t-shirt") and ``accessories`` one value per item
("red wristband left"). A caption that says nothing of a slot leaves it out. The reader knows the words of
sports and dance descriptions, not all of English: what it cannot read it does not count, either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

COLOURS = ("black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "grey", "gray", "brown",
           "navy", "dark", "light", "neon", "blond", "blonde", "beige", "gold", "silver", "maroon", "teal", "cyan",
           "auburn", "ginger")
HAIR_WORDS = frozenset(("short", "long", "curly", "buzzed", "straight", "wavy", "cropped", *COLOURS))
SKIN_WORDS = frozenset(("light", "fair", "medium", "tan", "brown", "dark", "olive", "pale", "deep"))
SOCK_WORDS = frozenset(("ankle", "crew", "knee-high", "long", "short", *COLOURS))
BUILD_WORDS = frozenset(("slim", "broad", "tall", "short", "stocky", "average", "muscular", "thin", "heavy",
                         "athletic", "lean"))
COLOUR_WORDS = frozenset(COLOURS)
ACCESSORIES = ("headband", "wristband", "knee sleeve", "arm sleeve", "sweatband", "glasses", "cap", "tape",
               "watch", "necklace", "bracelet")
TOPS = ("sequined top", "tank top", "t-shirt", "leotard", "dress", "tracksuit", "shirt", "top")
SLOTS = ("team", "number", "costume", "build", "hair", "skin", "shoes", "socks", "accessories")

def _any(words: frozenset[str] | tuple[str, ...]) -> str:
    """A regex alternation of ``words``, longest first (so "knee-high" is not read as "knee")."""
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


def _run(words: frozenset[str], most: int) -> str:
    """1..``most`` consecutive slot words, each followed by a space: only words of the slot are captured."""
    return rf"\b((?:(?:{_any(words)}) ){{1,{most}}})"


_PATTERNS = {
    "hair": re.compile(_run(HAIR_WORDS, 4) + r"hair(?: in an? (ponytail|bun))?\b"),
    "shaved": re.compile(r"\bshaved head\b|\bbald\b"),
    "skin": re.compile(_run(SKIN_WORDS, 2) + r"skin\b"),
    "shoes": re.compile(_run(COLOUR_WORDS, 2) + r"(?:shoes|sneakers|trainers|boots|cleats)\b"),
    "socks": re.compile(_run(SOCK_WORDS, 3) + r"socks\b"),
    "team": re.compile(rf"\b({_any(COLOUR_WORDS | {'home', 'away'})}) (?:team|jersey|kit|uniform)\b"),
    "number": re.compile(r"(?:\bnumber|\bno|#)\s*(\d{1,3})\b"),
    "build": re.compile(_run(BUILD_WORDS, 3) + r"(?:build|player|dancer|person|man|woman)\b"),
    "costume": re.compile(rf"\b(?:({_any(COLOUR_WORDS)}) )?({_any(TOPS)})\b"),
    "accessories": re.compile(rf"\b(?:({_any(COLOUR_WORDS)}) )?({_any(ACCESSORIES)})"
                              r"(?: on the (left|right) (?:wrist|knee|arm))?\b"),
}

Statements = dict[str, frozenset[str]]


def _normalise(text: str) -> str:
    """Lower case, punctuation a boundary no slot phrase crosses ("white shoes, black hair")."""
    return re.sub(r"[^a-z0-9#\- ]+", " | ", text.lower().replace("no.", "no "))


def read_statements(caption: str) -> Statements:
    """The values ``caption`` states for each slot it mentions (see the module docstring)."""
    text = _normalise(caption)
    found: dict[str, set[str]] = {}

    def add(slot: str, *parts: str | None) -> None:
        value = " ".join(" ".join(part.split()) for part in parts if part)
        if value:
            found.setdefault(slot, set()).add(value)

    for match in _PATTERNS["hair"].finditer(text):
        add("hair", match.group(1), match.group(2))
    if _PATTERNS["shaved"].search(text):
        add("hair", "shaved")
    for slot in ("skin", "shoes", "socks", "build", "team", "number"):
        for match in _PATTERNS[slot].finditer(text):
            add(slot, str(int(match.group(1))) if slot == "number" else match.group(1))
    for match in _PATTERNS["costume"].finditer(text):
        add("costume", match.group(1), match.group(2))
    for match in _PATTERNS["accessories"].finditer(text):
        add("accessories", match.group(1), match.group(2), match.group(3))
    return {slot: frozenset(values) for slot, values in found.items()}


def truth_statements(attributes: Mapping[str, object], kind: str | None) -> Statements:
    """What a fully correct caption of these sheet attributes states: the sheet rendered as the template renders
    it (:func:`builders.captions.template.form_with`), then read like any caption."""
    from builders.captions.template import form_with, sentence_parts, shown_attributes

    truth = read_statements(form_with(sentence_parts(shown_attributes(attributes), kind)))
    truth.setdefault("accessories", frozenset())  # no accessory is a statement too: any one named is wrong
    return truth
