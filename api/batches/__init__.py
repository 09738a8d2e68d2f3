"""Batches: a JSONL file of questions answered in the background, line by line, resumably."""
