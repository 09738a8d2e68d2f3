"""Batch schemas (the rows are in core/db/models.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.db.models import BatchRow


class BatchPublic(BaseModel):
    id: str
    state: str = Field(description="pending, running, completed or cancelled.")
    total: int = Field(description="Lines in the batch.")
    done: int = Field(description="Lines answered.")
    failed: int = Field(description="Lines that could not be answered (their output line has the error).")
    pending: int = Field(description="Lines not answered yet.")
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: BatchRow, counts: dict[str, int]) -> BatchPublic:
        return cls(
            id=row.id,
            state=row.state,
            total=row.total,
            done=counts.get("done", 0),
            failed=counts.get("failed", 0),
            pending=counts.get("pending", 0),
            created_at=row.created_at,
            finished_at=row.finished_at,
        )
