"""Tracklet captions: pluggable captioners, a cache keyed by (tracklet, captioner, prompt), reviewed imports,
the captioning recipe, the caption audit.

Captioners are created by name (:func:`create_captioner`; :func:`register_captioner` and the ``vreid.captioners``
entry points add more); the template captioner reads attribute sheets of synthetic footage, and multimodal model
captioners plug into the same :class:`Captioner` interface.
"""

from builders.captions.base import (
    CAPTIONERS,
    AttributeSheet,
    Caption,
    Captioner,
    CaptionerEntry,
    CaptionRequest,
    CaptionSummary,
    CaptionTarget,
    ImportSummary,
    caption_dataset,
    caption_requests,
    caption_target,
    create_captioner,
    import_captions,
    register_captioner,
)
from builders.captions.recipe import CaptionRecipe, evenly_spaced, load_caption_recipe

__all__ = [
    "CAPTIONERS",
    "AttributeSheet",
    "Caption",
    "CaptionRecipe",
    "CaptionRequest",
    "CaptionSummary",
    "CaptionTarget",
    "Captioner",
    "CaptionerEntry",
    "ImportSummary",
    "caption_dataset",
    "caption_requests",
    "caption_target",
    "create_captioner",
    "evenly_spaced",
    "import_captions",
    "load_caption_recipe",
    "register_captioner",
]
