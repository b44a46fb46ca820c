"""Tracklet captions: a pluggable captioner, a cache keyed by (tracklet, captioner, prompt), reviewed imports.

Captioners are created by name (:func:`create_captioner`); the template captioner reads attribute sheets of
synthetic footage, and multimodal model captioners plug into the same :class:`Captioner` interface.
"""

from builders.captions.base import (
    CAPTIONERS,
    AttributeSheet,
    Caption,
    Captioner,
    CaptionRequest,
    CaptionSummary,
    ImportSummary,
    caption_dataset,
    caption_requests,
    create_captioner,
    evenly_spaced,
    import_captions,
)

__all__ = [
    "CAPTIONERS",
    "AttributeSheet",
    "Caption",
    "CaptionRequest",
    "CaptionSummary",
    "Captioner",
    "ImportSummary",
    "caption_dataset",
    "caption_requests",
    "create_captioner",
    "evenly_spaced",
    "import_captions",
]
