"""Models of the endpoints app."""
