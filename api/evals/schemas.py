"""Request and response schemas of the eval routes."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.db.models import EvalRunRow
from evals.feedback import RatedAnswer


class EvalRunCreate(BaseModel):
    suite: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The suite, as its YAML would read (name, dataset, corpus, settings, thresholds...). Its "
            "dataset is a loader over the server's datasets folder, or `cases` are given inline."
        ),
    )
    shipped: str | None = Field(
        default=None,
        max_length=100,
        description="Name of a suite shipped with Lore (evals/suites/NAME.yaml) instead of `suite`.",
    )
    cases: list[dict[str, Any]] | None = Field(
        default=None, description="Cases (question, reference_answer, reference_documents...) for `suite`."
    )
    limit: int | None = Field(
        default=None, ge=1, strict=True, description="Run only this many questions, spread evenly."
    )
    baseline: str | None = Field(
        default=None, max_length=100, description="ID of an earlier run to check regressions against."
    )


class EvalRunPublic(BaseModel):
    id: str
    suite: str
    state: str = Field(
        description="pending, running, succeeded (every gate passed), failed (a gate failed) or error"
    )
    passed: bool | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None

    @classmethod
    def from_row(cls, row: EvalRunRow) -> EvalRunPublic:
        return cls.model_validate(row, from_attributes=True)


class EvalRunDetail(EvalRunPublic):
    summary: dict[str, Any] | None = Field(description="Metrics, not-measured counts, latency, tokens, tags.")
    gates: list[dict[str, Any]] | None

    @classmethod
    def from_row(cls, row: EvalRunRow) -> EvalRunDetail:
        return cls.model_validate(row, from_attributes=True)


class ShippedSuite(BaseModel):
    name: str = Field(description='Start it with POST /v1/evals/runs {"shipped": name}.')
    description: str
    corpus: str | None
    mode: str


class FeedbackItem(BaseModel):
    message_id: str
    conversation_id: str
    corpus: str | None
    question: str
    answer: str
    rating: str
    comment: str | None
    username: str
    created_at: datetime
    citations: list[dict[str, Any]]

    @classmethod
    def of(cls, rated: RatedAnswer) -> FeedbackItem:
        return cls(**{**dataclasses.asdict(rated), "citations": list(rated.citations)})


class FeedbackExport(BaseModel):
    """The body POST /v1/evals/runs takes: the suite and its cases."""

    suite: dict[str, Any]
    cases: list[dict[str, Any]]
