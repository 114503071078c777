"""Models of the cohort app."""
