"""eval runs: the suite's corpus, so a run is shown only to callers who may read that corpus

Runs recorded before this get their corpus from the suite YAML they kept; a run whose YAML names
none stays null, and only admins see it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

eval_runs = sa.table(
    'eval_runs',
    sa.column('id', sa.String(length=36)),
    sa.column('suite_yaml', sa.Text()),
    sa.column('corpus', sa.String(length=200)),
)


def corpus_of(suite_yaml: str | None) -> str | None:
    """The corpus a stored suite YAML names, or None when it names none (or cannot be read)."""
    try:
        raw: Any = yaml.safe_load(suite_yaml or '')
    except yaml.YAMLError:
        return None
    corpus = raw.get('corpus') if isinstance(raw, dict) else None
    return corpus if isinstance(corpus, str) and 0 < len(corpus) <= 200 else None


def upgrade() -> None:
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corpus', sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f('ix_eval_runs_corpus'), ['corpus'], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.select(eval_runs.c.id, eval_runs.c.suite_yaml)).all()
    for run_id, suite_yaml in rows:
        corpus = corpus_of(suite_yaml)
        if corpus is not None:
            bind.execute(eval_runs.update().where(eval_runs.c.id == run_id).values(corpus=corpus))


def downgrade() -> None:
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_runs_corpus'))
        batch_op.drop_column('corpus')
