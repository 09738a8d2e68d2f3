"""Adapters: one per external system, each with a production backend and an embedded default."""
