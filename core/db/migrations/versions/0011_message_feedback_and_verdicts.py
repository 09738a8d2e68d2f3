"""message feedback (thumbs up or down, a comment), answer verdicts (refusal, removed sentences),
and the name a renamed corpus's collections keep

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('verdict', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('feedback_rating', sa.String(length=10), nullable=True))
        batch.add_column(sa.Column('feedback_comment', sa.Text(), nullable=True))
        batch.add_column(sa.Column('feedback_by', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('feedback_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_messages_feedback_rating', 'messages', ['feedback_rating'])
    op.add_column('corpora', sa.Column('collection_key', sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column('corpora', 'collection_key')
    op.drop_index('ix_messages_feedback_rating', table_name='messages')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('feedback_at')
        batch.drop_column('feedback_by')
        batch.drop_column('feedback_comment')
        batch.drop_column('feedback_rating')
        batch.drop_column('verdict')
