"""Corpus routes: admins create and delete; every caller lists the corpora they may read."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth.dependencies import AdminPrincipal, CurrentPrincipal
from api.corpora import service
from api.corpora.schemas import CorpusCreate, CorpusPublic
from api.dependencies import ResourcesDep
from api.ops.ratelimit import AdminRateLimit, QueryRateLimit
from api.schemas import ErrorResponse

router = APIRouter(prefix="/v1/corpora", tags=["corpora"])


@router.post(
    "",
    dependencies=[AdminRateLimit],
    response_model=CorpusPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse, "description": "The name is taken"}},
)
async def create_corpus(body: CorpusCreate, _: AdminPrincipal, resources: ResourcesDep) -> CorpusPublic:
    async with resources.sessions() as session:
        row = await service.create(session, name=body.name)
        await session.commit()
        return CorpusPublic(
            id=row.id, name=row.name, version=row.version, documents=0, created_at=row.created_at
        )


@router.get("", response_model=list[CorpusPublic], dependencies=[QueryRateLimit])
async def list_corpora(principal: CurrentPrincipal, resources: ResourcesDep) -> list[CorpusPublic]:
    scope = await service.read_scope(resources, principal)
    async with resources.sessions() as session:
        rows = await service.list_visible(session, scope=scope)
    return [
        CorpusPublic(id=r.id, name=r.name, version=r.version, documents=n, created_at=r.created_at)
        for r, n in rows
    ]


@router.delete(
    "/{corpus_id}",
    dependencies=[AdminRateLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse, "description": "No such corpus"}},
)
async def delete_corpus(corpus_id: str, _: AdminPrincipal, resources: ResourcesDep) -> None:
    await service.delete(resources, corpus_id=corpus_id)
