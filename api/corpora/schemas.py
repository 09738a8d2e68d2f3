"""Corpus schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CorpusCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Unique name, used by queries and ingestion.")


class CorpusPublic(BaseModel):
    id: str
    name: str
    version: int = Field(description="Bumped whenever the corpus's chunks change.")
    documents: int
    created_at: datetime
