"""batches and their lines, with per-line state, for POST /v1/batches and lore batch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'batches',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=True),
        sa.Column('rate_key', sa.String(length=200), nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_batches_user_id'), 'batches', ['user_id'], unique=False)
    op.create_index(op.f('ix_batches_state'), 'batches', ['state'], unique=False)
    op.create_index(op.f('ix_batches_created_at'), 'batches', ['created_at'], unique=False)
    op.create_table(
        'batch_lines',
        sa.Column('batch_id', sa.String(length=36), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('custom_id', sa.String(length=200), nullable=True),
        sa.Column('question', sa.Text(), nullable=True),
        sa.Column('corpus', sa.String(length=200), nullable=True),
        sa.Column('k', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('answers', sa.Integer(), nullable=False),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('batch_id', 'n'),
    )


def downgrade() -> None:
    op.drop_table('batch_lines')
    op.drop_index(op.f('ix_batches_created_at'), table_name='batches')
    op.drop_index(op.f('ix_batches_state'), table_name='batches')
    op.drop_index(op.f('ix_batches_user_id'), table_name='batches')
    op.drop_table('batches')
