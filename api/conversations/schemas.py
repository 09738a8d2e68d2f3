"""Conversation schemas: Create / Public families."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

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


class ConversationUpdate(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="The new title.")


Rating = Literal["up", "down"]


class FeedbackCreate(BaseModel):
    rating: Rating = Field(description="up: the answer helped; down: it did not (evals can replay it).")
    comment: str | None = Field(default=None, max_length=4000, description="What was wrong or right.")


class FeedbackPublic(BaseModel):
    rating: Rating
    comment: str | None
    created_at: datetime


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
    refused: bool = Field(default=False, description="The answer says the documents do not answer it.")
    answer_kind: str | None = Field(default=None, description="generated, extractive, refusal... (answers).")
    unsupported_sentences: list[dict[str, str]] = Field(
        default_factory=list, description="Sentences verification removed from the answer, with reasons."
    )
    feedback: FeedbackPublic | None = Field(default=None, description="The owner's feedback on an answer.")

    @classmethod
    def from_row(cls, row: Any) -> Self:
        verdict = row.verdict or {}
        rated = row.feedback_rating is not None and row.feedback_at is not None
        return cls(
            id=row.id,
            role=row.role,
            content=row.content,
            citations=row.citations,
            model=row.model,
            timings=row.timings,
            status=row.status,
            created_at=row.created_at,
            refused=bool(verdict.get("refused", False)),
            answer_kind=verdict.get("answer_kind"),
            unsupported_sentences=list(verdict.get("unsupported_sentences", [])),
            feedback=FeedbackPublic(
                rating=row.feedback_rating, comment=row.feedback_comment, created_at=row.feedback_at
            )
            if rated
            else None,
        )


class ConversationWithMessages(ConversationPublic):
    messages: list[MessagePublic]
