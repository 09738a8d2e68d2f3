"""Evaluation suites: datasets of questions run through Lore's pipeline, scored and reported."""
