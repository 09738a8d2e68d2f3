"""Conversation routes: every caller sees and changes only their own conversations."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth.dependencies import CredentialCacheDep, ReaderPrincipal
from api.conversations import service
from api.conversations.schemas import (
    ConversationCreate,
    ConversationPublic,
    ConversationUpdate,
    ConversationWithMessages,
    FeedbackCreate,
    MessagePublic,
)
from api.corpora.service import read_scope
from api.dependencies import BackgroundDep, ResourcesDep
from api.ops.ratelimit import QueryRateLimit
from api.schemas import ErrorResponse

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], dependencies=[QueryRateLimit])
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such conversation"}
}


@router.post(
    "",
    response_model=ConversationPublic,
    status_code=status.HTTP_201_CREATED,
    responses={404: {"model": ErrorResponse, "description": "No such corpus (for this caller)"}},
)
async def create_conversation(
    body: ConversationCreate,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    credentials: CredentialCacheDep,
) -> ConversationPublic:
    scope = await read_scope(resources, principal, credentials)
    async with resources.sessions() as session:
        row = await service.create(
            session, user_id=principal.user_id, title=body.title, corpus=body.corpus, scope=scope
        )
        await session.commit()
        return ConversationPublic.model_validate(row)


@router.get("", response_model=list[ConversationPublic])
async def list_conversations(principal: ReaderPrincipal, resources: ResourcesDep) -> list[ConversationPublic]:
    async with resources.sessions() as session:
        rows = await service.list_owned(session, user_id=principal.user_id)
        return [ConversationPublic.model_validate(r) for r in rows]


@router.get("/{conversation_id}", response_model=ConversationWithMessages, responses=_NOT_FOUND)
async def get_conversation(
    conversation_id: str, principal: ReaderPrincipal, resources: ResourcesDep
) -> ConversationWithMessages:
    async with resources.sessions() as session:
        row = await service.get_owned(session, user_id=principal.user_id, conversation_id=conversation_id)
        messages = await service.messages(session, conversation_id=row.id)
        return ConversationWithMessages(
            **ConversationPublic.model_validate(row).model_dump(),
            messages=[MessagePublic.from_row(m) for m in messages],
        )


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_conversation(
    conversation_id: str, principal: ReaderPrincipal, resources: ResourcesDep
) -> None:
    async with resources.sessions() as session:
        await service.delete_owned(session, user_id=principal.user_id, conversation_id=conversation_id)
        await session.commit()


@router.patch("/{conversation_id}", response_model=ConversationPublic, responses=_NOT_FOUND)
async def rename_conversation(
    conversation_id: str, body: ConversationUpdate, principal: ReaderPrincipal, resources: ResourcesDep
) -> ConversationPublic:
    async with resources.sessions() as session:
        row = await service.rename(
            session, user_id=principal.user_id, conversation_id=conversation_id, title=body.title
        )
        await session.commit()
        return ConversationPublic.model_validate(row)


@router.put(
    "/{conversation_id}/messages/{message_id}/feedback",
    response_model=MessagePublic,
    responses=_NOT_FOUND,
    summary="Rate an answer (thumbs up or down, with a comment); evaluators can export it as eval cases",
)
async def give_feedback(
    conversation_id: str,
    message_id: str,
    body: FeedbackCreate,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    background: BackgroundDep,
) -> MessagePublic:
    # A streamed answer is saved just after its `done` event: feedback sent at once waits for it.
    await background.settle("save-exchange")
    async with resources.sessions() as session:
        row = await service.give_feedback(
            session,
            user_id=principal.user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            rating=body.rating,
            comment=body.comment,
        )
        await session.commit()
        return MessagePublic.from_row(row)


@router.delete(
    "/{conversation_id}/messages/{message_id}/feedback",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
    summary="Take back one's feedback on an answer",
)
async def clear_feedback(
    conversation_id: str, message_id: str, principal: ReaderPrincipal, resources: ResourcesDep
) -> None:
    async with resources.sessions() as session:
        await service.clear_feedback(
            session, user_id=principal.user_id, conversation_id=conversation_id, message_id=message_id
        )
        await session.commit()
