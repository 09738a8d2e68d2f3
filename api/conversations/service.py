"""Conversation storage (no HTTP here). Every lookup is by owner: another user's conversation
is simply not found, so its existence does not leak."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.components.llm import Message
from core.db.models import ConversationRow, CorpusRow, MessageRow, UserRow, utcnow
from core.errors import InvalidInputError, NotFoundError
from evals.feedback import RatedAnswer

HISTORY_TURNS = 8


async def create(
    session: AsyncSession,
    *,
    user_id: str,
    title: str = "",
    corpus: str | None = None,
    scope: frozenset[str] | None = None,
) -> ConversationRow:
    """A new conversation; its ``corpus`` must exist and be in the caller's ``scope`` (None: any
    corpus), else it is not found, as searching it would be."""
    if corpus is not None:
        known = await session.scalar(select(CorpusRow.id).where(CorpusRow.name == corpus))
        if known is None or (scope is not None and corpus not in scope):
            raise NotFoundError(f"no corpus named {corpus!r}")
    row = ConversationRow(id=str(uuid.uuid4()), user_id=user_id, title=title.strip()[:200], corpus=corpus)
    session.add(row)
    await session.flush()
    return row


async def list_owned(session: AsyncSession, *, user_id: str, limit: int = 100) -> Sequence[ConversationRow]:
    query = (
        select(ConversationRow)
        .where(ConversationRow.user_id == user_id)
        .order_by(ConversationRow.updated_at.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def get_owned(session: AsyncSession, *, user_id: str, conversation_id: str) -> ConversationRow:
    """The conversation if ``user_id`` owns it; NotFoundError otherwise (whoever else owns it)."""
    row = await session.get(ConversationRow, conversation_id)
    if row is None or row.user_id != user_id:
        raise NotFoundError(f"no conversation {conversation_id!r}")
    return row


async def delete_owned(session: AsyncSession, *, user_id: str, conversation_id: str) -> None:
    row = await get_owned(session, user_id=user_id, conversation_id=conversation_id)
    await session.execute(delete(MessageRow).where(MessageRow.conversation_id == row.id))
    await session.delete(row)


async def messages(session: AsyncSession, *, conversation_id: str) -> Sequence[MessageRow]:
    query = (
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
        .order_by(MessageRow.created_at)
    )
    return (await session.execute(query)).scalars().all()


async def history(
    session: AsyncSession, *, conversation_id: str, turns: int = HISTORY_TURNS
) -> tuple[Message, ...]:
    """The latest ``turns`` messages as chat messages, oldest first (partial answers included)."""
    query = (
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id, MessageRow.status != "error")
        .order_by(MessageRow.created_at.desc())
        .limit(turns)
    )
    rows = list((await session.execute(query)).scalars())
    return tuple({"role": r.role, "content": r.content} for r in reversed(rows))


async def record_exchange(
    session: AsyncSession,
    *,
    conversation_id: str,
    question: str,
    answer: str,
    citations: list[dict[str, Any]],
    model: str | None,
    timings: dict[str, float],
    status: str = "complete",
    answer_id: str | None = None,
    verdict: dict[str, Any] | None = None,
) -> None:
    """Store a question and its answer (``status`` partial when the client left mid-stream).

    ``answer_id`` is the answer message's ID when the client was told it already (the stream's
    ``done`` event); ``verdict`` says whether it is a refusal and which sentences were removed.
    """
    asked = utcnow()
    session.add(
        MessageRow(
            id=str(uuid.uuid4()),
            conversation_id=conversation_id,
            role="user",
            content=question,
            created_at=asked,
        )
    )
    session.add(
        MessageRow(
            id=answer_id or str(uuid.uuid4()),
            conversation_id=conversation_id,
            role="assistant",
            content=answer,
            citations=citations,
            model=model,
            timings=timings,
            status=status,
            verdict=verdict,
            # strictly after the question, so ordering by time keeps question before answer
            created_at=asked + timedelta(microseconds=1),
        )
    )
    conversation = await session.get(ConversationRow, conversation_id)
    if conversation is not None:
        conversation.updated_at = utcnow()
        if not conversation.title:
            conversation.title = question.strip()[:200]


async def rename(session: AsyncSession, *, user_id: str, conversation_id: str, title: str) -> ConversationRow:
    """Give an owned conversation a new title (stripped; at most 200 characters)."""
    row = await get_owned(session, user_id=user_id, conversation_id=conversation_id)
    title = title.strip()[:200]
    if not title:
        raise InvalidInputError("the title is empty")
    row.title = title
    await session.flush()
    return row


async def owned_answer(
    session: AsyncSession, *, user_id: str, conversation_id: str, message_id: str
) -> MessageRow:
    """An answer (assistant message) of an owned conversation; NotFoundError otherwise."""
    row = await get_owned(session, user_id=user_id, conversation_id=conversation_id)
    message = await session.get(MessageRow, message_id)
    if message is None or message.conversation_id != row.id or message.role != "assistant":
        raise NotFoundError(f"no answer {message_id!r} in conversation {conversation_id!r}")
    return message


async def give_feedback(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: str,
    message_id: str,
    rating: str,
    comment: str | None,
) -> MessageRow:
    """Record the owner's thumbs up or down (and comment) on an answer; a second one replaces it."""
    message = await owned_answer(
        session, user_id=user_id, conversation_id=conversation_id, message_id=message_id
    )
    message.feedback_rating = rating
    message.feedback_comment = (comment or "").strip() or None
    message.feedback_by = user_id
    message.feedback_at = utcnow()
    await session.flush()
    return message


async def clear_feedback(
    session: AsyncSession, *, user_id: str, conversation_id: str, message_id: str
) -> None:
    message = await owned_answer(
        session, user_id=user_id, conversation_id=conversation_id, message_id=message_id
    )
    message.feedback_rating = message.feedback_comment = message.feedback_by = None
    message.feedback_at = None


async def rated_answers(
    session: AsyncSession, *, rating: str | None = None, limit: int = 1000
) -> list[RatedAnswer]:
    """Answers readers rated (``rating``: up or down only), newest rating first, with their questions."""
    query = (
        select(MessageRow, ConversationRow, UserRow.username)
        .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
        .join(UserRow, UserRow.id == ConversationRow.user_id)
        .where(MessageRow.feedback_rating.is_not(None))
        .order_by(MessageRow.feedback_at.desc())
        .limit(limit)
    )
    if rating is not None:
        query = query.where(MessageRow.feedback_rating == rating)
    rows = (await session.execute(query)).all()
    # Each answer's question: the latest user message before it, read for all the answers at once.
    asked: dict[str, list[MessageRow]] = {}
    conversation_ids = sorted({answer.conversation_id for answer, _, _ in rows})
    if conversation_ids:
        questions = await session.execute(
            select(MessageRow)
            .where(MessageRow.conversation_id.in_(conversation_ids), MessageRow.role == "user")
            .order_by(MessageRow.created_at)
        )
        for question in questions.scalars():
            asked.setdefault(question.conversation_id, []).append(question)
    out = []
    for answer, conversation, username in rows:
        before = [q for q in asked.get(answer.conversation_id, []) if q.created_at < answer.created_at]
        out.append(
            RatedAnswer(
                message_id=answer.id,
                conversation_id=conversation.id,
                corpus=conversation.corpus,
                question=before[-1].content if before else "",
                answer=answer.content,
                rating=str(answer.feedback_rating),
                comment=answer.feedback_comment,
                username=username,
                created_at=answer.feedback_at or answer.created_at,
                citations=tuple(answer.citations or ()),
            )
        )
    return out
