"""job lifecycle: states normalised to ingestion.jobs' enums, per-document stages and timings,
queued crawl and re-index parameters, retries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What ingestion.jobs' enums allow (a migration keeps its own copy: the enums may change later).
JOB_STATES = ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')
DOCUMENT_STATUSES = ('new', 'changed', 'unchanged', 'failed')


def upgrade() -> None:
    op.add_column('ingestion_jobs', sa.Column('params', sa.JSON(), nullable=True))
    op.add_column('ingestion_jobs', sa.Column('retry_of', sa.String(length=36), nullable=True))
    op.add_column('ingestion_job_documents', sa.Column('stage', sa.String(length=20), nullable=True))
    op.add_column('ingestion_job_documents', sa.Column('timings_ms', sa.JSON(), nullable=True))
    op.add_column(
        'ingestion_job_documents', sa.Column('attempts', sa.Integer(), server_default='1', nullable=False)
    )
    op.add_column('ingestion_job_documents', sa.Column('seq', sa.Integer(), nullable=True))
    # A re-index recorded its documents as "reindexed" and counted them as changed: they are changed.
    op.execute("UPDATE ingestion_job_documents SET status = 'changed' WHERE status = 'reindexed'")
    # Anything else no runner writes any more (none is known) is a failure, so nothing reads it as done.
    op.execute(
        "UPDATE ingestion_job_documents SET status = 'failed' WHERE status NOT IN "
        f"({', '.join(repr(s) for s in DOCUMENT_STATUSES)})"
    )
    # "pending" was only ever shown, never stored; an unknown state is a job whose process is gone.
    op.execute(
        "UPDATE ingestion_jobs SET state = 'interrupted' WHERE state NOT IN "
        f"({', '.join(repr(s) for s in JOB_STATES)})"
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite has it since 3.35), not a batch: SQLite's batch mode
    # copies the table and drops the old one, which deletes every job's documents by cascade.
    for column in ('seq', 'attempts', 'timings_ms', 'stage'):
        op.drop_column('ingestion_job_documents', column)
    for column in ('retry_of', 'params'):
        op.drop_column('ingestion_jobs', column)
