"""Tables (SQLAlchemy 2 typed mappings). Pydantic schemas live apart from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and always read back timezone-aware, in UTC.

    SQLite keeps no zone (it hands back naive datetimes, and would store an aware one's local
    wall time); PostgreSQL's ``timestamptz`` does. Either way every reader gets aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class CorpusRow(Base):
    __tablename__ = "corpora"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Bumped on every change of the corpus's chunks (a re-index's switch too); caches key on it.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # The serving generation's collection: the pointer a re-index swaps. Null until the first ingest.
    collection: Mapped[str | None] = mapped_column(String(100), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the serving generation was made with; null: the settings' defaults, fixed at the first ingest.
    embedding_model: Mapped[str | None] = mapped_column(String(500), nullable=True)
    chunk_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunk_overlap_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The name its collections are named after: its first name, kept when it is renamed.
    collection_key: Mapped[str | None] = mapped_column(String(200), nullable=True)

    @property
    def index_key(self) -> str:
        """What its collections and alias are named from (core.indexing): its name until a rename."""
        return self.collection_key or self.name


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("corpus_id", "source", name="uq_documents_corpus_source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    corpus_id: Mapped[str] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    # Chunker version and config and the corpus's embedding model: a change re-indexes the document.
    index_signature: Mapped[str] = mapped_column(String(600))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ocr_pages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # pages OCR read
    # When a later run first found the source gone; the document is deleted once the grace passes.
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DocumentBlocksRow(Base):
    """A document's extracted text blocks (zlib-compressed JSON), so re-chunking needs no source."""

    __tablename__ = "document_blocks"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DocumentFileRow(Base):
    """The bytes a document was last indexed from (an upload, a file, a page as fetched), served by
    ``GET /v1/documents/{id}/file``; in the database, which the server and every worker share."""

    __tablename__ = "document_files"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IngestionJobRow(Base):
    __tablename__ = "ingestion_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    corpus_id: Mapped[str] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), index=True)
    # An ingestion.jobs.JobState; only that module writes it.
    state: Mapped[str] = mapped_column(String(20))
    # An ingestion.jobs.JobKind.
    kind: Mapped[str] = mapped_column(String(20), default="ingest", server_default="ingest")
    # What a worker needs to run a queued crawl or re-index (its start URLs and settings, its model).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The job whose failed documents this one runs again (`lore jobs retry`).
    retry_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # Refreshed after every document: a running job whose heartbeat stopped was killed.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # "host:pid" of the process running it, so a dead local process is noticed at once.
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    documents_total: Mapped[int] = mapped_column(Integer, default=0)
    documents_new: Mapped[int] = mapped_column(Integer, default=0)
    documents_changed: Mapped[int] = mapped_column(Integer, default=0)
    documents_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    documents_failed: Mapped[int] = mapped_column(Integer, default=0)
    documents_deleted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    chunks_embedded: Mapped[int] = mapped_column(Integer, default=0)
    pages_ocr: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # pages OCR read
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A queued job's source prefixes covered whole (documents under them it did not see are gone).
    prune_under: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class JobDocumentRow(Base):
    """What one job did with one source: an ingestion.jobs.DocumentStatus (with the reason when it
    failed), the stage it reached and the time each stage took."""

    __tablename__ = "ingestion_job_documents"

    job_id: Mapped[str] = mapped_column(ForeignKey("ingestion_jobs.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # An ingestion.jobs.DocumentStage: the last it reached, or the one that failed.
    stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    timings_ms: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    # Tries it took (a transient failure is tried again, with backoff, a bounded number of times).
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    ocr_pages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Its place in the job's order of recorded documents (1, 2, ...): the ID of its progress event.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class JobSourceRow(Base):
    """A queued job's document, and which worker holds it: a claim lasts until ``lease_until``.

    Workers claim rows that no live claim holds; the one that finishes a document marks it done,
    so each document of a job is recorded once however many workers share the job.
    """

    __tablename__ = "ingestion_job_sources"

    job_id: Mapped[str] = mapped_column(ForeignKey("ingestion_jobs.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # A file the workers read (a path they all see), or the bytes themselves (an upload).
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    # argon2 hash; null for users who only sign in through OIDC.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    role: Mapped[str] = mapped_column(String(20))  # reader | evaluator | admin
    oidc_issuer: Mapped[str | None] = mapped_column(Text, nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The key's first characters, shown in listings and logs; the key itself is never stored.
    display_prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthSessionRow(Base):
    """One login: its refresh tokens rotate within it; logout or token reuse revokes it whole."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # ID of the one refresh token currently valid in this session.
    current_refresh_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CorpusGrantRow(Base):
    __tablename__ = "corpus_grants"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    corpus_id: Mapped[str] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    corpus: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # complete | partial (the client left mid-stream) | error
    status: Mapped[str] = mapped_column(String(20), default="complete")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An answer's verdicts: refused, answer_kind and the sentences verification removed (with reasons).
    verdict: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    # A reader's feedback on an answer: up | down, with an optional comment (evals turn it into cases).
    feedback_rating: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    feedback_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    feedback_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EvalRunRow(Base):
    """A suite run started through the API; its records and reports live in ``run_dir``."""

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    suite: Mapped[str] = mapped_column(String(200))
    # The suite's corpus: who may read the run (its answers quote the corpus). Null only for a run
    # recorded before the column whose suite names none; admins alone see those.
    corpus: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    # The suite as submitted (YAML text), so a run can be repeated as it was.
    suite_yaml: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # pending | running | succeeded (gates passed) | failed (a gate failed) | error (the run broke)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    summary: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    gates: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_dir: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BatchRow(Base):
    """A batch of questions (``api/batches``): who owns it and where it stands."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Null for a batch run with `lore batch` (the local operator, unrestricted).
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # The caller's rate-limit bucket (Principal.rate_key) each line spends from; null for the CLI.
    rate_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # pending | running | completed | cancelled
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BatchLineRow(Base):
    """One input line of a batch and, once answered, its result."""

    __tablename__ = "batch_lines"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based, input order
    custom_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    corpus: Mapped[str | None] = mapped_column(String(200), nullable=True)
    k: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # pending | done | failed
    state: Mapped[str] = mapped_column(String(20), default="pending")
    # Times answering the line began (a line cut off by a crash begins again) and results recorded
    # (at most one: a line is recorded only while pending).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
