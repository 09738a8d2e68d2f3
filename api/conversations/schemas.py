"""Conversation schemas: Create / Public families."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.corpora.schemas import CorpusRef


class ConversationCreate(BaseModel):
    title: str = Field(
        default="", max_length=200, description="Shown in lists; the first question by default."
    )
    corpus: CorpusRef | None = Field(
        default=None,
        description="Corpus the conversation's questions search by default; one the caller may read.",
    )


class ConversationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    corpus: str | None
    created_at: datetime
    updated_at: datetime


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str = Field(description="user or assistant")
    content: str
    citations: list[dict[str, Any]]
    model: str | None
    timings: dict[str, float]
    status: str = Field(description="complete, or partial when the client left before the answer ended")
    created_at: datetime


class ConversationWithMessages(ConversationPublic):
    messages: list[MessagePublic]
