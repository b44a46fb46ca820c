"""Synthetic sports and dance footage with exact ground truth (``vreid synth``).

The toolkit's demo footage and the dataset builder's test data: articulated people who walk, run or dance on a
court or stage, occlude each other, leave and re-enter a panning view, written in SportsMOT's or DanceTrack's
public layout with an attribute sheet per identity.
"""

from builders.synth.generator import SynthResult, SynthSequence, generate

__all__ = ["SynthResult", "SynthSequence", "generate"]
