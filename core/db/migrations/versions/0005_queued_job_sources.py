"""queued jobs: their sources with worker claims, and the prefixes they prune

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ingestion_job_sources',
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('path', sa.Text(), nullable=True),
        sa.Column('data', sa.LargeBinary(), nullable=True),
        sa.Column('claimed_by', sa.String(length=255), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['ingestion_jobs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'source'),
    )
    with op.batch_alter_table('ingestion_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prune_under', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ingestion_jobs', schema=None) as batch_op:
        batch_op.drop_column('prune_under')
    op.drop_table('ingestion_job_sources')
