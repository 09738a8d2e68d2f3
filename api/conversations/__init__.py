"""Conversations: a user's multi-turn exchanges with Lore, with every answer's citations."""
