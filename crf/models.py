"""Models of the crf app."""
