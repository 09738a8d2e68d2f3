"""A NUL character (or a lone surrogate) in any request input is a 422, never a 500, on SQLite and
PostgreSQL: PostgreSQL's text holds no NUL, and its refusal used to surface as a 500 (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from api.inputs import check_inputs, refused_text
from tests.api.conftest import DatabaseWorld

pytestmark = pytest.mark.models

FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}

# (method, path, request keywords, whether the NUL reaches the database when nothing checks it first).
NUL_REQUESTS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("POST", "/v1/auth/token", {"content": b"username=ad%00min&password=secret", "headers": FORM}, True),
    ("POST", "/v1/auth/token", {"content": b"username=admin&password=se%00cret", "headers": FORM}, False),
    ("GET", "/v1/jobs?corpus=%00", {}, True),
    ("GET", "/v1/jobs/%00", {}, True),
    ("POST", "/v1/jobs/%00/cancel", {}, True),
    ("POST", "/v1/corpora", {"json": {"name": "hand\x00book"}}, False),
    ("DELETE", "/v1/corpora/%00", {}, True),
    ("POST", "/v1/corpora/%00/crawls", {"json": {"urls": ["https://example.com/"]}}, True),
    ("POST", "/v1/corpora/%00/reindex", {"json": {}}, True),
    ("POST", "/v1/search", {"json": {"query": "widget", "corpus": "hand\x00book", "k": 2}}, True),
    ("POST", "/v1/search", {"json": {"query": "wid\x00get", "k": 2}}, False),
    ("POST", "/v1/query", {"json": {"question": "widget?", "corpus": "\x00"}}, True),
    ("POST", "/v1/query", {"json": {"question": "widget?", "conversation_id": "\x00"}}, True),
    ("POST", "/v1/query/stream", {"json": {"question": "widget?", "corpus": "\x00"}}, True),
    ("POST", "/v1/conversations", {"json": {"title": "ti\x00tle"}}, True),
    ("POST", "/v1/conversations", {"json": {"corpus": "hand\x00book"}}, True),
    ("GET", "/v1/conversations/%00", {}, True),
    ("DELETE", "/v1/conversations/%00", {}, True),
    ("GET", "/v1/documents/%00", {}, True),
    ("DELETE", "/v1/documents/%00", {}, True),
    ("POST", "/v1/grants", {"json": {"username": "alice", "corpus": "hand\x00book"}}, True),
    ("DELETE", "/v1/grants", {"json": {"username": "al\x00ice", "corpus": "handbook"}}, True),
    ("GET", "/v1/users/%00/grants", {}, True),
    ("POST", "/v1/users", {"json": {"username": "bob", "role": "reader", "password": "pass\x00word"}}, False),
    ("GET", "/v1/keys?username=%00", {}, True),
    ("POST", "/v1/keys", {"json": {"username": "root", "name": "ci\x00"}}, True),
    ("POST", "/v1/keys", {"json": {"username": "ro\x00ot", "name": "ci"}}, True),
    ("DELETE", "/v1/keys/%00", {}, True),
    ("POST", "/v1/auth/refresh", {"json": {"refresh_token": "a.b\x00.c"}}, False),
    ("GET", "/v1/evals/runs/%00", {}, True),
    ("GET", "/v1/evals/runs/%00/report", {}, True),
    ("POST", "/v1/evals/runs", {"json": {"shipped": "sci\x00fact"}}, False),
]
IDS = [f"{method} {path} {kw.get('json') or kw.get('content') or ''}" for method, path, kw, _ in NUL_REQUESTS]


@pytest.mark.parametrize(("method", "path", "kwargs", "_reaches_db"), NUL_REQUESTS, ids=IDS)
async def test_a_nul_in_any_input_is_a_422_in_the_error_shape(
    on_each_database: DatabaseWorld, method: str, path: str, kwargs: dict[str, Any], _reaches_db: bool
) -> None:
    response = await on_each_database.client.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "wid\\ud800get", "k": 2}',
        b'{"query": "widget", "k": 2, "filters": {"source": ["\\udfff.md"]}}',
        b'{"query": "widget", "k": 2, "\\u0000": 1}',
    ],
)
async def test_a_lone_surrogate_or_nul_escaped_in_json_is_a_422(
    on_each_database: DatabaseWorld, body: bytes
) -> None:
    response = await on_each_database.client.post("/v1/search", content=body, headers=JSON)
    assert response.status_code == 422, response.text


async def test_a_surrogate_pair_is_a_character_like_any_other(on_each_database: DatabaseWorld) -> None:
    response = await on_each_database.client.post(
        "/v1/conversations", content=b'{"title": "launch \\ud83d\\ude80"}', headers=JSON
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "launch \U0001f680"


async def test_the_database_refusing_text_is_a_422_even_past_the_input_check(
    on_each_database: DatabaseWorld,
) -> None:
    """The last line of defence: with the boundary check switched off, what PostgreSQL refuses
    is still a 422 (SQLite stores a NUL: it answers as for any other unknown name)."""

    async def unchecked() -> None:
        return None

    app = on_each_database.app
    app.dependency_overrides[check_inputs] = unchecked
    try:
        for method, path, kwargs, reaches_db in NUL_REQUESTS:
            if not reaches_db:
                continue
            response = await on_each_database.client.request(method, path, **kwargs)
            assert response.status_code < 500, (method, path, response.text)
            if on_each_database.database == "postgres":
                assert response.status_code == 422, (method, path, response.text)
    finally:
        del app.dependency_overrides[check_inputs]


@pytest.mark.parametrize("name", ["hand\x00book", "hand\ud800book"])
async def test_each_database_refusing_text_is_recognised(on_each_database: DatabaseWorld, name: str) -> None:
    from sqlalchemy import select

    from core.db.models import CorpusRow

    async with on_each_database.app.state.resources.sessions() as session:
        try:
            await session.scalar(select(CorpusRow.id).where(CorpusRow.name == name))
        except Exception as exc:
            assert refused_text(exc), repr(exc)
        else:
            assert on_each_database.database == "sqlite" and "\x00" in name  # SQLite stores a NUL


async def test_file_contents_may_hold_nul_but_file_names_and_paths_may_not(
    on_each_database: DatabaseWorld,
) -> None:
    client = on_each_database.client
    corpus = (await client.post("/v1/corpora", json={"name": "uploads"})).json()["id"]
    files = {"files": ("notes.txt", b"Plain notes\x00 with a NUL byte inside.\n", "text/plain")}
    accepted = await client.post(f"/v1/corpora/{corpus}/documents", files=files)
    assert accepted.status_code == 202, accepted.text
    # By hand: httpx would percent-encode the NUL in the file name.
    part = (
        b'--B\r\nContent-Disposition: form-data; name="files"; filename="no\x00tes.txt"\r\n\r\n'
        b"text\r\n--B--\r\n"
    )
    named = await client.post(
        f"/v1/corpora/{corpus}/documents",
        content=part,
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert named.status_code == 422, named.text
    pathed = await client.post("/v1/corpora/%00/documents", files=files)
    assert pathed.status_code == 422, pathed.text
