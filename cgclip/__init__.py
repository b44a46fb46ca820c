"""CG-CLIP: CLIP with Caption-guided Memory Refinement (:mod:`cgclip.cmr`) and Token-based Feature Extraction
(:mod:`cgclip.tfe`); the model, its config and its registry factory are in :mod:`cgclip.model`."""
