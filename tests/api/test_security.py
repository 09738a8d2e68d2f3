"""Security matrix over every route in the OpenAPI document, and isolation between callers.

Each route is declared here with who may call it; a route added without a declaration fails
the first test, so no route ships unguarded by accident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import LLMSettings, Settings

pytestmark = pytest.mark.models

PUBLIC, ANY, EVALUATOR, ADMIN = "public", "any", "evaluator", "admin"
# Authenticated by the browser session's HttpOnly cookie (and its CSRF header) instead of a bearer.
COOKIE = "session cookie"
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,
    ("POST", "/v1/auth/logout"): ANY,
    ("GET", "/v1/auth/providers"): PUBLIC,
    ("POST", "/v1/auth/session"): PUBLIC,
    ("POST", "/v1/auth/session/refresh"): COOKIE,
    ("DELETE", "/v1/auth/session"): ANY,
    ("POST", "/v1/auth/tickets"): ANY,
    ("GET", "/v1/auth/me"): ANY,
    ("POST", "/v1/query"): ANY,
    ("POST", "/v1/query/stream"): ANY,
    ("POST", "/v1/search"): ANY,
    ("POST", "/v1/chat/completions"): ANY,
    ("GET", "/v1/models"): ANY,
    ("GET", "/v1/models/{model}"): ANY,
    # Batches: any signed-in user; each line is checked against the owner's grants (test_batches.py).
    ("POST", "/v1/batches"): ANY,
    ("GET", "/v1/batches"): ANY,
    ("GET", "/v1/batches/{batch_id}"): ANY,
    ("GET", "/v1/batches/{batch_id}/output"): ANY,
    ("POST", "/v1/batches/{batch_id}/cancel"): ANY,
    ("GET", "/v1/corpora"): ANY,
    ("GET", "/v1/conversations"): ANY,
    ("POST", "/v1/conversations"): ANY,
    ("GET", "/v1/conversations/{conversation_id}"): ANY,
    ("DELETE", "/v1/conversations/{conversation_id}"): ANY,
    ("PATCH", "/v1/conversations/{conversation_id}"): ANY,
    ("PUT", "/v1/conversations/{conversation_id}/messages/{message_id}/feedback"): ANY,
    ("DELETE", "/v1/conversations/{conversation_id}/messages/{message_id}/feedback"): ANY,
    ("POST", "/v1/corpora"): ADMIN,
    ("DELETE", "/v1/corpora/{corpus_id}"): ADMIN,
    ("PATCH", "/v1/corpora/{corpus_id}"): ADMIN,
    ("POST", "/v1/corpora/{corpus_id}/documents"): ADMIN,
    ("POST", "/v1/corpora/{corpus_id}/crawls"): ADMIN,
    ("POST", "/v1/corpora/{corpus_id}/reindex"): ADMIN,
    ("GET", "/v1/users"): ADMIN,
    ("POST", "/v1/users"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("GET", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("POST", "/v1/grants"): ADMIN,
    ("DELETE", "/v1/grants"): ADMIN,
    ("GET", "/v1/users/{username}/grants"): ADMIN,
    ("GET", "/v1/jobs"): ADMIN,
    ("GET", "/v1/jobs/{job_id}"): ADMIN,
    ("POST", "/v1/jobs/{job_id}/cancel"): ADMIN,
    ("GET", "/v1/jobs/{job_id}/events"): ADMIN,
    ("GET", "/v1/jobs/{job_id}/documents"): ADMIN,
    ("POST", "/v1/jobs/{job_id}/retry"): ADMIN,
    ("GET", "/v1/documents"): ADMIN,
    ("GET", "/v1/documents/{document_id}"): ADMIN,
    ("DELETE", "/v1/documents/{document_id}"): ADMIN,
    ("GET", "/v1/documents/{document_id}/text"): ANY,
    ("GET", "/v1/documents/{document_id}/file"): ANY,
    ("POST", "/v1/evals/runs"): EVALUATOR,
    ("GET", "/v1/evals/runs"): EVALUATOR,
    ("GET", "/v1/evals/runs/{run_id}"): EVALUATOR,
    ("GET", "/v1/evals/runs/{run_id}/report"): EVALUATOR,
    ("GET", "/v1/evals/suites"): EVALUATOR,
    ("GET", "/v1/evals/compare"): EVALUATOR,
    ("GET", "/v1/evals/compare/report"): EVALUATOR,
    ("GET", "/v1/evals/feedback"): EVALUATOR,
    ("GET", "/v1/evals/feedback/export"): EVALUATOR,
}
# Routes that answer in OpenAI's error shape, with OpenAI's code for a bad key.
OPENAI_SHAPED = {"/v1/chat/completions", "/v1/models", "/v1/models/{model}"}


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    keys: dict[str, str]
    sources: list[str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture(scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[World]:
    """Corpora `shared` and `private`; readers `alice` (granted `shared`) and `bob` (no grant); an admin."""
    root = tmp_path_factory.mktemp("security")
    settings = Settings(data_dir=root / "lore", llm=LLMSettings(max_tokens=16))
    for corpus, text in (
        ("shared", "The shared widget is red."),
        ("private", "The private widget is violet."),
    ):
        docs = root / corpus
        docs.mkdir()
        (docs / f"{corpus}.md").write_text(f"# {corpus}\n\n{text}\n")
    keys = {
        "admin": await user_key(settings, "root", role="admin"),
        "alice": await user_key(settings, "alice", role="reader", grants=("shared",)),
        "bob": await user_key(settings, "bob", role="reader"),
        "eve": await user_key(settings, "eve", role="evaluator", grants=("shared",)),
    }
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    async with open_resources(settings, with_llm=False) as resources:
        for corpus in ("shared", "private"):
            await ingest_paths(resources, [root / corpus], corpus=corpus)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lore.test", timeout=120) as client:
            sources = [str((root / c / f"{c}.md").resolve()) for c in ("shared", "private")]
            yield World(client=client, app=app, keys=keys, sources=sources)


def _concrete(path: str) -> str:
    return path.replace("{", "x-").replace("}", "")


async def test_every_route_is_declared_in_the_policy(world: World) -> None:
    spec = (await world.client.get("/openapi.json")).json()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert routes == set(POLICY), (
        f"declare these routes: {routes - set(POLICY)}; gone: {set(POLICY) - routes}"
    )


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v != PUBLIC))
async def test_anonymous_is_rejected(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, _concrete(path), json={})
    assert response.status_code == 401, response.text
    code = "invalid_api_key" if path in OPENAI_SHAPED else "unauthenticated"
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v == PUBLIC))
async def test_public_routes_need_no_credentials(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, _concrete(path))
    assert response.status_code != 401


@pytest.mark.parametrize("who", ["alice", "eve"])
@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v == ADMIN))
async def test_non_admins_are_forbidden_on_admin_routes(
    world: World, who: str, method: str, path: str
) -> None:
    response = await world.client.request(method, _concrete(path), json={}, headers=world.auth(who))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v == EVALUATOR))
async def test_readers_are_forbidden_on_evaluator_routes(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, _concrete(path), json={}, headers=world.auth("alice"))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("who", ["eve", "admin"])
@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v == EVALUATOR))
async def test_evaluators_and_admins_pass_the_evaluator_guard(
    world: World, who: str, method: str, path: str
) -> None:
    response = await world.client.request(method, _concrete(path), json={}, headers=world.auth(who))
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in POLICY.items() if v == ADMIN))
async def test_admin_passes_the_guard(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, _concrete(path), json={}, headers=world.auth("admin"))
    assert response.status_code not in (401, 403), response.text


async def test_corpus_list_shows_only_granted_corpora(world: World) -> None:
    async def names(who: str) -> set[str]:
        response = await world.client.get("/v1/corpora", headers=world.auth(who))
        return {c["name"] for c in response.json()}

    assert await names("alice") == {"shared"}
    assert await names("bob") == set()
    assert await names("admin") == {"shared", "private"}


def _sources(body: dict[str, Any]) -> set[str]:
    return {Path(c["source"]).stem for c in body["citations"]}


async def test_reader_never_gets_chunks_from_an_ungranted_corpus(world: World) -> None:
    question = {"question": "What colour is the private widget?"}
    # the admin (who reads everything) asks first, so a scope-blind cache would leak its answer
    admin = await world.client.post("/v1/query", json=question, headers=world.auth("admin"))
    assert admin.status_code == 200
    alice = await world.client.post("/v1/query", json=question, headers=world.auth("alice"))
    assert alice.status_code == 200
    assert not alice.json()["cached"]
    assert "private" not in _sources(alice.json())
    named = await world.client.post(
        "/v1/query", json={**question, "corpus": "private"}, headers=world.auth("alice")
    )
    assert named.status_code == 404  # not 403: the corpus's existence does not leak
    bob = await world.client.post("/v1/query", json=question, headers=world.auth("bob"))
    assert bob.status_code == 200 and bob.json()["citations"] == []
    async with world.client.stream(
        "POST", "/v1/query/stream", json=question, headers=world.auth("alice")
    ) as response:
        raw = "".join([part async for part in response.aiter_text()])
    assert "private.md" not in raw and "violet" not in raw


async def test_search_never_returns_chunks_from_an_ungranted_corpus(world: World) -> None:
    query = {"query": "What colour is the private widget?", "k": 10}

    async def sources(who: str, **extra: Any) -> set[str]:
        response = await world.client.post("/v1/search", json={**query, **extra}, headers=world.auth(who))
        assert response.status_code == 200, response.text
        return {Path(result["source"]).stem for result in response.json()["results"]}

    assert await sources("admin") == {"shared", "private"}
    assert await sources("alice") == {"shared"}
    assert await sources("bob") == set()
    named = await world.client.post(
        "/v1/search", json={**query, "corpus": "private"}, headers=world.auth("alice")
    )
    assert named.status_code == 404  # not 403: the corpus's existence does not leak


async def test_conversations_are_private_to_their_owner(world: World) -> None:
    created = await world.client.post(
        "/v1/conversations", json={"title": "mine"}, headers=world.auth("alice")
    )
    assert created.status_code == 201
    cid = created.json()["id"]
    for method, path, body in (
        ("GET", f"/v1/conversations/{cid}", None),
        ("DELETE", f"/v1/conversations/{cid}", None),
        ("POST", "/v1/query", {"question": "hi", "conversation_id": cid}),
        ("POST", "/v1/query/stream", {"question": "hi", "conversation_id": cid}),
    ):
        response = await world.client.request(method, path, json=body, headers=world.auth("bob"))
        assert response.status_code == 404, (method, path, response.text)
    listed = (await world.client.get("/v1/conversations", headers=world.auth("bob"))).json()
    assert cid not in {c["id"] for c in listed}
    still = await world.client.get(f"/v1/conversations/{cid}", headers=world.auth("alice"))
    assert still.status_code == 200


async def test_password_guessing_is_rate_limited_per_address(world: World) -> None:
    # Runs last in this module: it spends the client address's login budget.
    statuses = []
    for attempt in range(15):
        response = await world.client.post(
            "/v1/auth/token", data={"username": "alice", "password": f"guess-{attempt}"}
        )
        statuses.append(response.status_code)
    assert statuses[0] == 401
    assert statuses[-1] == 429
    assert int(response.headers["retry-after"]) >= 1


async def test_admin_sees_jobs_and_deletes_a_document(world: World) -> None:
    listed = await world.client.get("/v1/jobs", params={"corpus": "private"}, headers=world.auth("admin"))
    assert listed.status_code == 200
    job = listed.json()[0]
    assert job["state"] == "succeeded" and job["documents_new"] == 1
    detail = (await world.client.get(f"/v1/jobs/{job['id']}", headers=world.auth("admin"))).json()
    assert detail["failures"] == []
    cancel = await world.client.post(f"/v1/jobs/{job['id']}/cancel", headers=world.auth("admin"))
    assert cancel.status_code == 409
    from core.ids import document_id

    private = next((Path(p) for p in world.sources if p.endswith("private.md")), None)
    assert private is not None
    doc = document_id("private", str(private))
    assert (await world.client.get(f"/v1/documents/{doc}", headers=world.auth("admin"))).json()["chunks"] >= 1
    assert (await world.client.delete(f"/v1/documents/{doc}", headers=world.auth("admin"))).status_code == 204
    assert (await world.client.get(f"/v1/documents/{doc}", headers=world.auth("admin"))).status_code == 404
    after = await world.client.post(
        "/v1/query", json={"question": "private widget", "corpus": "private"}, headers=world.auth("admin")
    )
    assert after.json()["citations"] == []
