"""corpus collections and config, document blocks

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:12:41.517301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Signatures name the corpus's model, which may be a long folder path. SQLite ignores the
    # length, and must not rebuild `documents` for it (see downgrade).
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('documents', 'index_signature', type_=sa.String(length=600),
                        existing_type=sa.String(length=200), existing_nullable=False)
    op.create_table('document_blocks',
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id')
    )
    # Adding columns never recreates the table (see downgrade).
    with op.batch_alter_table('corpora', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('collection', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('embedding_model', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('chunk_tokens', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chunk_overlap_tokens', sa.Integer(), nullable=True))


def downgrade() -> None:
    # Never recreate corpora on SQLite: dropping the old table would cascade to every row that
    # references it (documents, jobs, grants). SQLite 3.35+ drops columns in place.
    with op.batch_alter_table('corpora', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('chunk_overlap_tokens')
        batch_op.drop_column('chunk_tokens')
        batch_op.drop_column('embedding_model')
        batch_op.drop_column('generation')
        batch_op.drop_column('collection')

    op.drop_table('document_blocks')
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('documents', 'index_signature', type_=sa.String(length=200),
                        existing_type=sa.String(length=600), existing_nullable=False)
