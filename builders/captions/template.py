"""Captions written from attribute sheets, for synthetic footage whose ground truth says what is visible.

They are exact by construction, which makes them a clean reference for caption-guided training, and
``hallucination`` corrupts a chosen fraction of the attributes on purpose, to measure how much caption noise
(as a multimodal model would make) costs. Wrong values come first from the other identities of the same video
(the mix-ups a model makes between teammates), else from a small vocabulary of that attribute.

Everything is seeded by (seed, tracklet_id), so a caption does not depend on batch size or order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from builders.captions.base import Caption, CaptionRequest, Captioner, short_hash
from vreid_bench.errors import ConfigError, DatasetFormatError

TEMPLATE_VERSION = 1

Value = str | tuple[str, ...]  # an attribute as rendered: one phrase, or several (accessories)

BODY_KEYS = ("hair", "skin_tone")
WORN_KEYS = ("shoes", "socks", "accessories")
KNOWN_KEYS = ("build", "team", "jersey_color", "jersey_number", "costume", *BODY_KEYS, *WORN_KEYS)

VOCABULARY: Mapping[str, tuple[Value, ...]] = MappingProxyType({
    "build": ("slim build", "stocky build", "tall build", "muscular build", "short build"),
    "team": ("home", "away"),
    "jersey_color": ("red", "blue", "green", "yellow", "white", "black", "orange", "purple"),
    "jersey_number": tuple(str(n) for n in range(1, 100)),
    "costume": ("a black leotard", "a white dress", "a red tracksuit", "a blue sequined top"),
    "hair": ("short black hair", "long blond hair", "curly brown hair", "a shaved head", "long red hair",
             "short grey hair"),
    "skin_tone": ("light skin", "medium skin", "dark skin", "olive skin"),
    "shoes": ("white shoes", "black shoes", "red shoes", "blue shoes", "grey shoes"),
    "socks": ("white socks", "black socks", "grey socks", "red socks", "long blue socks"),
    "accessories": ((), ("a white headband",), ("a black wristband",), ("a knee sleeve",),
                    ("a white headband", "a black wristband")),
})


def render_value(value: object) -> Value | None:
    """The phrase(s) a caption shows for a sheet value; None for what it cannot show (numbers as words)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return None


def shown_attributes(attributes: Mapping[str, object]) -> dict[str, Value]:
    """The attributes a caption names, in sentence order; other keys (and a team named by its colour) are left out.

    Keys the template does not know are shown when their value is a phrase, since sheets hold phrases a caption
    can use verbatim.
    """
    shown: dict[str, Value] = {}
    for key in KNOWN_KEYS:
        if key == "team" and render_value(attributes.get("jersey_color")):
            continue
        value = render_value(attributes.get(key))
        if value is not None:
            shown[key] = value
    for key in sorted(set(attributes) - set(KNOWN_KEYS)):
        value = attributes[key]
        if isinstance(value, str) and value.strip():
            shown[key] = value.strip()
    return shown


@dataclass(frozen=True)
class SentenceParts:
    """The pieces every sentence form is made of; any of them may be missing."""

    noun: str
    build: str | None
    team: str | None
    number: str | None
    costume: str | None
    body: tuple[str, ...]
    worn: tuple[str, ...]


def sentence_parts(shown: Mapping[str, Value], kind: str | None) -> SentenceParts:
    def phrase(key: str) -> str | None:
        value = shown.get(key)
        return value if isinstance(value, str) else None

    build = phrase("build")
    if build and build.endswith(" build"):
        build = build[: -len(" build")]  # "slim build" -> "a slim player"
    extra = tuple(v for k, v in shown.items() if k not in KNOWN_KEYS and isinstance(v, str))
    accessories = shown.get("accessories", ())
    return SentenceParts(
        noun={"sports": "player", "dance": "dancer"}.get(kind or "", "person"),
        build=build,
        team=phrase("jersey_color") or phrase("team"),
        number=phrase("jersey_number"),
        costume=phrase("costume"),
        body=tuple(v for v in (phrase(k) for k in BODY_KEYS) if v) + extra,
        worn=tuple(v for v in (phrase("shoes"), phrase("socks")) if v)
        + (accessories if isinstance(accessories, tuple) else (accessories,)),
    )


def join_phrases(phrases: Sequence[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def subject(parts: SentenceParts) -> str:
    words = f"{parts.build} {parts.noun}" if parts.build else parts.noun
    article = "an" if words[0].lower() in "aeiou" else "a"
    return f"{article} {words}"


def sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def form_with(p: SentenceParts) -> str:
    """A slim player of the red team wearing jersey number 7, with short black hair, ... and a white headband."""
    text = subject(p)
    text += f" of the {p.team} team" if p.team else ""
    text += f" wearing jersey number {p.number}" if p.number else ""
    text += f" wearing {p.costume}" if p.costume else ""
    details = p.body + p.worn
    text += f", with {join_phrases(details)}" if details else ""
    return sentence(text)


def form_wearing(p: SentenceParts) -> str:
    """A slim player of the red team in jersey number 7 with short black hair and light skin, wearing ..."""
    text = subject(p)
    text += f" of the {p.team} team" if p.team else ""
    text += f" in jersey number {p.number}" if p.number else ""
    text += f" in {p.costume}" if p.costume else ""
    text += f" with {join_phrases(p.body)}" if p.body else ""
    text += f", wearing {join_phrases(p.worn)}" if p.worn else ""
    return sentence(text)


def form_lead(p: SentenceParts) -> str:
    """Red team, number 7: a slim player with short black hair and light skin who wears white shoes ..."""
    lead = [f"{p.team} team"] if p.team else []
    lead += [f"number {p.number}"] if p.number else []
    lead += [f"in {p.costume}"] if p.costume else []
    text = subject(p)
    text += f" with {join_phrases(p.body)}" if p.body else ""
    text += f" who wears {join_phrases(p.worn)}" if p.worn else ""
    return sentence(", ".join(lead) + ": " + text if lead else text)


SENTENCE_FORMS: tuple[Callable[[SentenceParts], str], ...] = (form_with, form_wearing, form_lead)


def wrong_values(key: str, true_value: Value, others: Sequence[Mapping[str, object]]) -> list[Value]:
    """Values a caption could wrongly show for ``key``: other identities' first, else the vocabulary's."""
    seen = {render_value(other.get(key)) for other in others}
    pool = sorted((v for v in seen if v is not None and v != true_value), key=repr)
    if pool:
        return pool
    return [v for v in VOCABULARY.get(key, ()) if v != true_value]


def describe(attributes: Mapping[str, object], kind: str | None, others: Sequence[Mapping[str, object]],
             rng: random.Random, hallucination: float) -> Caption:
    """One sentence; ``hallucination`` of the swappable attributes replaced, their keys in ``hallucinated``."""
    form = SENTENCE_FORMS[rng.randrange(len(SENTENCE_FORMS))]
    shown = shown_attributes(attributes)
    pools = {key: wrong_values(key, value, others) for key, value in shown.items()}
    swappable = [key for key in shown if pools[key]]
    # Stochastic rounding: the expected number swapped is exactly hallucination * len(swappable).
    count = min(len(swappable), int(hallucination * len(swappable) + rng.random()))
    swapped = sorted(rng.sample(swappable, count))
    for key in swapped:
        shown[key] = rng.choice(pools[key])
    return Caption(form(sentence_parts(shown, kind)), {"hallucinated": swapped})


class TemplateCaptioner(Captioner):
    """Sentences from attribute sheets (synthetic footage only), optionally with a known fraction made wrong."""

    name = "template"

    def __init__(self, hallucination: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= float(hallucination) <= 1.0:
            raise ConfigError(f"hallucination {hallucination} is out of range; give a fraction between 0 and 1")
        self.hallucination = float(hallucination)
        self.seed = int(seed)
        self.prompt_id = short_hash(
            f"template-v{TEMPLATE_VERSION}|hallucination={self.hallucination!r}|seed={self.seed}"
        )

    def check_requests(self, requests: Sequence[CaptionRequest]) -> None:
        for request in requests:
            if request.sheet is None:
                raise ConfigError(
                    f"tracklet {request.tracklet_id}: video {request.video!r} has no attribute sheet "
                    f"(attributes/{request.video}.json); the template captioner needs the attribute sheets that "
                    "only synthetic footage has: use a model captioner or `vreid caption DATASET --import FILE`"
                )
            if request.attributes is None:
                raise DatasetFormatError(
                    f"tracklet {request.tracklet_id}: attributes/{request.video}.json has no identity "
                    f"{request.track_id!r}; rebuild the dataset from footage whose attribute sheet covers every track"
                )

    def describe_batch(self, requests: Sequence[CaptionRequest]) -> list[Caption]:
        self.check_requests(requests)
        captions = []
        for request in requests:
            assert request.sheet is not None and request.attributes is not None  # checked above
            others = [attrs for track, attrs in request.sheet.identities.items() if track != request.track_id]
            rng = random.Random(f"{self.seed}:{request.tracklet_id}")
            captions.append(describe(request.attributes, request.sheet.kind, others, rng, self.hallucination))
        return captions

    def caption_batch(self, requests: Sequence[CaptionRequest]) -> list[str]:
        return [caption.text for caption in self.describe_batch(requests)]
