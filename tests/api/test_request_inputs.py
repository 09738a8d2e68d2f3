"""What requests may carry besides text, on SQLite and PostgreSQL: corpus names follow one rule
(old names still work), integers are integers, bodies come in the route's media type, every
returned moment is UTC with its offset, and a conversation's corpus is one the caller may read."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.api.conftest import LEGACY_CORPUS, DatabaseWorld

pytestmark = pytest.mark.models


@pytest.mark.parametrize(
    "name",
    ["..", "a/b", "../etc", "-leading-dash", ".hidden", "with space", " padded", "x" * 65, "", "naïve"],
)
async def test_a_corpus_name_outside_the_rule_is_refused(on_each_database: DatabaseWorld, name: str) -> None:
    response = await on_each_database.client.post("/v1/corpora", json={"name": name})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("name", ["docs", "eval-sec10q", "team_a.v2", "X" * 64])
async def test_a_corpus_name_inside_the_rule_is_made(on_each_database: DatabaseWorld, name: str) -> None:
    response = await on_each_database.client.post("/v1/corpora", json={"name": name})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


async def test_ingestion_makes_no_corpus_outside_the_rule_but_fills_an_old_one(
    on_each_database: DatabaseWorld,
) -> None:
    from core.errors import InvalidInputError
    from ingestion.corpus_index import get_or_create_corpus

    async with on_each_database.app.state.resources.sessions() as session:
        with pytest.raises(InvalidInputError):
            await get_or_create_corpus(session, "../elsewhere")
        assert (await get_or_create_corpus(session, LEGACY_CORPUS)).name == LEGACY_CORPUS


async def test_a_corpus_named_before_the_rule_is_still_found_by_its_name(
    on_each_database: DatabaseWorld,
) -> None:
    client = on_each_database.client
    granted = await client.post("/v1/grants", json={"username": "alice", "corpus": LEGACY_CORPUS})
    assert granted.status_code == 201, granted.text
    listed = await client.get("/v1/users/alice/grants")
    assert {"username": "alice", "corpus": LEGACY_CORPUS} in listed.json()
    assert (await client.get("/v1/jobs", params={"corpus": LEGACY_CORPUS})).status_code == 200
    conversation = await client.post("/v1/conversations", json={"corpus": LEGACY_CORPUS})
    assert conversation.status_code == 201, conversation.text
    revoked = await client.request(
        "DELETE", "/v1/grants", json={"username": "alice", "corpus": LEGACY_CORPUS}
    )
    assert revoked.status_code == 204, revoked.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "widget", "k": True}),
        ("/v1/search", {"query": "widget", "k": "2"}),
        ("/v1/search", {"query": "widget", "k": 2.0}),
        ("/v1/query", {"question": "What colour is the widget?", "k": True}),
        ("/v1/evals/runs", {"shipped": "scifact", "limit": True}),
        ("/v1/corpora/x/reindex", {"chunk_tokens": True}),
        ("/v1/corpora/x/crawls", {"urls": ["https://example.com/"], "max_depth": False}),
    ],
)
async def test_an_integer_field_takes_only_an_integer(
    on_each_database: DatabaseWorld, path: str, body: dict[str, object]
) -> None:
    response = await on_each_database.client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
@pytest.mark.parametrize("path", ["/v1/search", "/v1/corpora", "/v1/conversations"])
async def test_a_body_that_is_not_json_to_a_json_route_is_a_415(
    on_each_database: DatabaseWorld, path: str, content_type: str
) -> None:
    response = await on_each_database.client.post(
        path, content=b'{"query": "widget", "k": 2}', headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_format"


async def test_json_with_a_charset_or_a_json_suffix_is_json(on_each_database: DatabaseWorld) -> None:
    for content_type in ("application/json; charset=utf-8", "application/JSON", "application/vnd.lore+json"):
        response = await on_each_database.client.post(
            "/v1/search", content=b'{"query": "widget", "k": 2}', headers={"content-type": content_type}
        )
        assert response.status_code == 200, (content_type, response.text)


async def test_the_login_form_refuses_json(on_each_database: DatabaseWorld) -> None:
    response = await on_each_database.client.post(
        "/v1/auth/token", json={"username": "root", "password": "x"}
    )
    assert response.status_code == 415, response.text


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0, value
    return moment


async def test_every_moment_returned_is_utc_with_its_offset_in_listings_as_on_create(
    on_each_database: DatabaseWorld,
) -> None:
    client = on_each_database.client
    created = (await client.post("/v1/corpora", json={"name": "moments"})).json()
    listed = next(c for c in (await client.get("/v1/corpora")).json() if c["name"] == "moments")
    assert listed["created_at"] == created["created_at"]
    assert created["created_at"].endswith("Z")
    conversation = (await client.post("/v1/conversations", json={"title": "when"})).json()
    listed_conversation = next(
        c for c in (await client.get("/v1/conversations")).json() if c["title"] == "when"
    )
    assert listed_conversation["created_at"] == conversation["created_at"]
    moments = [created["created_at"], conversation["created_at"], conversation["updated_at"]]
    moments += [user["created_at"] for user in (await client.get("/v1/users")).json()]
    for key in (await client.get("/v1/keys")).json():
        moments += [key["created_at"]] + [key[k] for k in ("last_used_at", "revoked_at") if key[k]]
    for job in (await client.get("/v1/jobs")).json():
        moments += [job["started_at"]] + ([job["finished_at"]] if job["finished_at"] else [])
    assert len(moments) >= 8
    for moment in moments:
        _utc(moment)


async def test_a_reader_cannot_start_a_conversation_over_a_corpus_they_cannot_read(
    on_each_database: DatabaseWorld,
) -> None:
    client, alice = on_each_database.client, on_each_database.auth("alice")
    for corpus in ("secrets", "no-such-corpus"):
        refused = await client.post("/v1/conversations", json={"corpus": corpus}, headers=alice)
        assert refused.status_code == 404, refused.text  # as searching it would: its existence does not leak
    granted = await client.post("/v1/conversations", json={"corpus": "handbook"}, headers=alice)
    assert granted.status_code == 201, granted.text
    assert (await client.post("/v1/conversations", json={"corpus": "secrets"})).status_code == 201  # admin
    assert (await client.post("/v1/conversations", json={"corpus": "no-such-corpus"})).status_code == 404
