"""cgclip package."""
