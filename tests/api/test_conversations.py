"""Conversations: turns are saved with their citations, streamed answers after they end, partial
answers as partial, and storage works on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conversations import service as conversations
from api.routes import query as query_routes
from api.schemas import QueryRequest
from core.db import migrate
from core.db.engine import create_engine, session_factory
from core.db.models import CorpusRow, UserRow
from core.errors import NotFoundError
from core.settings import DatabaseSettings, LLMSettings, Settings
from core.types import Answer, Citation
from retrieval.service import CitationsEvent, DoneEvent, StreamEvent, TokenEvent
from tests.served import served_corpus


@pytest.fixture(scope="module")
async def app_client(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    root = tmp_path_factory.mktemp("conversations")
    settings = Settings(data_dir=root / "lore", llm=LLMSettings(max_tokens=24))
    docs = root / "docs"
    docs.mkdir()
    (docs / "w.md").write_text("# Widgets\n\nThe Alpha widget is blue.\n\n## Care\n\nDust it weekly.\n")
    key = await user_key(settings, "carol", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as served:
        yield served


@pytest.mark.models
async def test_turns_are_saved_in_order_with_citations(app_client: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = app_client
    cid = (await client.post("/v1/conversations", json={"corpus": "handbook"})).json()["id"]
    first = await client.post(
        "/v1/query", json={"question": "What colour is the Alpha widget?", "conversation_id": cid}
    )
    assert first.status_code == 200
    async with client.stream(
        "POST", "/v1/query/stream", json={"question": "How often to dust it?", "conversation_id": cid}
    ) as response:
        assert response.status_code == 200
        assert "event: done" in "".join([p async for p in response.aiter_text()])
    await app.state.background.drain()
    saved = (await client.get(f"/v1/conversations/{cid}")).json()
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "user", "assistant"]
    assert saved["messages"][0]["content"] == "What colour is the Alpha widget?"
    assert saved["messages"][1]["content"] == first.json()["answer"]
    assert saved["messages"][1]["citations"] == first.json()["citations"]
    assert {m["status"] for m in saved["messages"]} == {"complete"}
    assert saved["title"] == "What colour is the Alpha widget?"
    listed = (await client.get("/v1/conversations")).json()
    assert cid in {c["id"] for c in listed}
    assert (await client.delete(f"/v1/conversations/{cid}")).status_code == 204
    assert (await client.get(f"/v1/conversations/{cid}")).status_code == 404


@pytest.mark.models
async def test_a_stream_the_client_leaves_is_saved_as_partial(
    app_client: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = app_client
    cid = (await client.post("/v1/conversations", json={})).json()["id"]

    async def events() -> AsyncIterator[StreamEvent]:
        yield TokenEvent("The Alpha")
        yield TokenEvent(" widget")
        yield CitationsEvent([Citation(1, "d", "Widgets", "/w.md", None, "text")])
        yield DoneEvent(Answer("The Alpha widget", [], [], "m"))

    body = QueryRequest(question="What colour?", conversation_id=cid)
    stream = query_routes._encode(
        events(), app.state.resources, app.state.background, app.state.metrics, body
    )
    first = await anext(stream)
    await stream.aclose()  # what Starlette does when the client disconnects
    await app.state.background.drain()

    assert first.startswith(b"event: token")
    saved = (await client.get(f"/v1/conversations/{cid}")).json()["messages"]
    assert [(m["role"], m["status"]) for m in saved] == [("user", "complete"), ("assistant", "partial")]
    assert saved[1]["content"] == "The Alpha"


async def check_storage_and_ownership(settings: Settings) -> None:
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    try:
        await _check(session_factory(engine))
    finally:
        await engine.dispose()


async def test_conversation_storage_on_sqlite(tmp_path: Path) -> None:
    await check_storage_and_ownership(Settings(data_dir=tmp_path / "lore"))


@pytest.mark.postgres
async def test_conversation_storage_on_postgres(tmp_path: Path, fresh_postgres_url: str) -> None:
    await check_storage_and_ownership(
        Settings(data_dir=tmp_path, database=DatabaseSettings(url=fresh_postgres_url))
    )


async def _check(sessions: Any) -> None:
    async with sessions() as session:
        for name in ("ann", "ben"):
            session.add(UserRow(id=name, username=name, role="reader"))
        session.add_all(CorpusRow(id=name, name=name) for name in ("handbook", "secrets"))
        await session.commit()
        for corpus in ("secrets", "missing"):
            with pytest.raises(NotFoundError, match="no corpus"):
                await conversations.create(
                    session, user_id="ann", corpus=corpus, scope=frozenset({"handbook"})
                )
        convo = await conversations.create(
            session, user_id="ann", corpus="handbook", scope=frozenset({"handbook"})
        )
        await session.commit()
        await conversations.record_exchange(
            session,
            conversation_id=convo.id,
            question="q1",
            answer="a1",
            citations=[{"n": 1}],
            model="m",
            timings={"total_ms": 1.0},
        )
        await session.commit()
        history = await conversations.history(session, conversation_id=convo.id)
        owned = await conversations.list_owned(session, user_id="ann")
        with pytest.raises(Exception, match="no conversation"):
            await conversations.get_owned(session, user_id="ben", conversation_id=convo.id)
        with pytest.raises(Exception, match="no conversation"):
            await conversations.get_owned(session, user_id="ann", conversation_id=str(uuid.uuid4()))
    assert history == ({"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"})
    assert [c.id for c in owned] == [convo.id]
