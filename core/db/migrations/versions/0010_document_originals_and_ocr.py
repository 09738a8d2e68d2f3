"""document originals (the bytes each document was indexed from) and OCR page counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'document_files',
        sa.Column(
            'document_id',
            sa.String(length=36),
            sa.ForeignKey('documents.id', ondelete='CASCADE'),
            primary_key=True,
        ),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=200), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column('documents', sa.Column('ocr_pages', sa.Integer(), server_default='0', nullable=False))
    op.add_column('ingestion_jobs', sa.Column('pages_ocr', sa.Integer(), server_default='0', nullable=False))
    op.add_column(
        'ingestion_job_documents', sa.Column('ocr_pages', sa.Integer(), server_default='0', nullable=False)
    )


def downgrade() -> None:
    # Plain DROP COLUMN, not a batch (see 0009: a batch would cascade-delete job documents).
    op.drop_column('ingestion_job_documents', 'ocr_pages')
    op.drop_column('ingestion_jobs', 'pages_ocr')
    op.drop_column('documents', 'ocr_pages')
    op.drop_table('document_files')
