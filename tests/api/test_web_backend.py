"""What the web app needs of the API: browser sessions (HttpOnly refresh cookie, CSRF), conversation
renames, feedback on answers that evals export as cases, corpus renames, document listings,
search explanations and run comparisons. The browser itself is driven in tests/web/."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.browser import CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, REFRESH_PATH, csrf_token
from core.settings import LLMSettings, RateLimitSettings, Settings
from tests.served import lore_env, served_corpus

PASSWORD = "correct horse battery"


class Served:
    def __init__(self, app: Any, admin: httpx.AsyncClient, settings: Settings) -> None:
        self.app, self.admin, self.settings = app, admin, settings

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://127.0.0.1:8000",
            timeout=120,
            headers=headers,
        )

    async def bearer(self, username: str) -> httpx.AsyncClient:
        async with self.client() as c:
            login = await c.post("/v1/auth/session", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return self.client(Authorization=f"Bearer {login.json()['access_token']}")


@pytest.fixture(scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[Served]:
    root = tmp_path_factory.mktemp("web-backend")
    # Many logins from one address: the login limit (tested in tests/api/ops) would refuse them.
    settings = Settings(
        data_dir=root / "lore", llm=LLMSettings(max_tokens=24), rate_limit=RateLimitSettings(enabled=False)
    )
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text(
        "# Widgets\n\nThe Alpha widget is blue and weighs 3 kg.\n\n## Care\n\nDust the Alpha widget weekly.\n"
    )
    (docs / "gadgets.md").write_text("# Gadgets\n\nThe Beta gadget runs on two AA batteries.\n")
    key = await user_key(settings, "root", role="admin")
    async with served_corpus(settings, docs, key) as (app, admin):
        for name, role in (("rita", "reader"), ("eve", "evaluator")):
            made = await admin.post("/v1/users", json={"username": name, "password": PASSWORD, "role": role})
            assert made.status_code == 201, made.text
        assert (
            await admin.post("/v1/grants", json={"username": "rita", "corpus": "handbook"})
        ).status_code == 201
        assert (
            await admin.post("/v1/grants", json={"username": "eve", "corpus": "handbook"})
        ).status_code == 201
        yield Served(app, admin, settings)


def _cookie_headers(response: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


async def test_a_browser_login_keeps_the_refresh_token_in_an_httponly_cookie_on_the_refresh_path(
    served: Served,
) -> None:
    async with served.client() as browser:
        login = await browser.post("/v1/auth/session", json={"username": "rita", "password": PASSWORD})
        assert login.status_code == 200, login.text
        body = login.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token in the body
        cookies = _cookie_headers(login)
        refresh = cookies[REFRESH_COOKIE].lower()
        assert "httponly" in refresh and "samesite=strict" in refresh
        assert f"path={REFRESH_PATH}" in refresh
        assert "secure" not in refresh  # a loopback address: browsers keep it over plain HTTP
        csrf = cookies[CSRF_COOKIE].lower()
        assert "httponly" not in csrf and "samesite=strict" in csrf and "path=/" in csrf
        assert login.headers["cache-control"] == "no-store"
        me = await browser.get("/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["username"] == "rita"


async def test_a_session_on_a_public_address_gets_secure_cookies(served: Served) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served.app), base_url="https://lore.example.com"
    ) as browser:
        login = await browser.post("/v1/auth/session", json={"username": "rita", "password": PASSWORD})
    assert login.status_code == 200
    assert all("secure" in h.lower() for h in login.headers.get_list("set-cookie"))


async def test_refresh_needs_the_csrf_header_and_rotates_the_cookie(served: Served) -> None:
    async with served.client() as browser:
        await browser.post("/v1/auth/session", json={"username": "rita", "password": PASSWORD})
        refresh_token = browser.cookies.get(REFRESH_COOKIE, path=REFRESH_PATH)
        assert refresh_token
        # httpx keeps cookies per path as a browser does: the refresh cookie goes to the refresh route.
        assert (await browser.post(REFRESH_PATH)).status_code == 403
        assert (await browser.post(REFRESH_PATH, headers={CSRF_HEADER: "0" * 64})).status_code == 403
        other_site = {CSRF_HEADER: csrf_token(refresh_token), "Origin": "https://evil.example"}
        assert (await browser.post(REFRESH_PATH, headers=other_site)).status_code == 403
        fresh = await browser.post(REFRESH_PATH, headers={CSRF_HEADER: csrf_token(refresh_token)})
        assert fresh.status_code == 200, fresh.text
        assert "access_token" in fresh.json()
        rotated = browser.cookies.get(REFRESH_COOKIE, path=REFRESH_PATH)
        assert rotated and rotated != refresh_token
        assert browser.cookies.get(CSRF_COOKIE) == csrf_token(rotated)


async def test_without_a_cookie_refresh_is_401_and_logout_ends_the_session(served: Served) -> None:
    async with served.client() as browser:
        assert (await browser.post(REFRESH_PATH, headers={CSRF_HEADER: "x"})).status_code == 401
        login = await browser.post("/v1/auth/session", json={"username": "rita", "password": PASSWORD})
        access = {"Authorization": f"Bearer {login.json()['access_token']}"}
        out = await browser.delete("/v1/auth/session", headers=access)
        assert out.status_code == 204
        assert any("max-age=0" in h.lower() for h in out.headers.get_list("set-cookie"))
        assert (await browser.get("/v1/auth/me", headers=access)).status_code == 401
    bad = await served.client().post("/v1/auth/session", json={"username": "rita", "password": "wrong!!!"})
    assert bad.status_code == 401


async def test_providers_say_password_only_without_oidc(served: Served) -> None:
    async with served.client() as anonymous:
        assert (await anonymous.get("/v1/auth/providers")).json() == {"password": True, "oidc": None}


async def test_the_committed_bundle_is_served_at_the_root_under_a_strict_csp(served: Served) -> None:
    async with served.client() as anonymous:
        shell = await anonymous.get("/")
        assert shell.status_code == 200, "api/static/app holds no built web app: run make web"
        csp = shell.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert shell.headers["x-content-type-options"] == "nosniff"
        assert shell.headers["cache-control"] == "no-cache"
        # The shell loads the bundle's own module script and nothing inline.
        scripts = re.findall(r"<script\b[^>]*>", shell.text)
        assert scripts and all('src="/assets/' in tag for tag in scripts)
        asset = re.search(r'src="(/assets/[^"]+\.js)"', shell.text)
        assert asset is not None
        served_asset = await anonymous.get(asset.group(1))
        assert served_asset.status_code == 200
        assert "immutable" in served_asset.headers["cache-control"]
        assert served_asset.headers["content-security-policy"] == csp
        # Pages shown outside the shell (a report, an original) make browsers ask for /favicon.ico.
        assert (await anonymous.get("/favicon.ico")).status_code == 200


async def _ask_streamed(client: httpx.AsyncClient, question: str, conversation_id: str) -> dict[str, Any]:
    events: dict[str, Any] = {}
    async with client.stream(
        "POST", "/v1/query/stream", json={"question": question, "conversation_id": conversation_id}
    ) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                events[event] = json.loads(line[6:])
    return events


@pytest.mark.models
async def test_feedback_on_a_streamed_answer_is_kept_and_exported_as_an_eval_case(
    served: Served, tmp_path: Path
) -> None:
    async with await served.bearer("rita") as rita, await served.bearer("eve") as eve:
        cid = (await rita.post("/v1/conversations", json={"corpus": "handbook"})).json()["id"]
        assert (await rita.patch(f"/v1/conversations/{cid}", json={"title": "Widget care"})).json()[
            "title"
        ] == "Widget care"
        events = await _ask_streamed(rita, "How often should I dust the Alpha widget?", cid)
        message_id = events["done"]["message_id"]
        # Sent at once, as a quick click would: it waits for the answer's save.
        rated = await rita.put(
            f"/v1/conversations/{cid}/messages/{message_id}/feedback",
            json={"rating": "down", "comment": "It should say <b>weekly</b>"},
        )
        assert rated.status_code == 200, rated.text
        assert rated.json()["feedback"]["rating"] == "down"
        saved = (await rita.get(f"/v1/conversations/{cid}")).json()
        answer = saved["messages"][1]
        assert answer["id"] == message_id and answer["feedback"]["comment"] == "It should say <b>weekly</b>"
        assert "unsupported_sentences" in answer and isinstance(answer["refused"], bool)
        # Not someone else's to rate.
        elsewhere = await eve.put(
            f"/v1/conversations/{cid}/messages/{message_id}/feedback", json={"rating": "up"}
        )
        assert elsewhere.status_code == 404
        assert (await rita.get("/v1/evals/feedback")).status_code == 403  # readers are not evaluators
        listed = (await eve.get("/v1/evals/feedback", params={"rating": "down"})).json()
        assert [f["message_id"] for f in listed] == [message_id]
        assert listed[0]["question"] == "How often should I dust the Alpha widget?"
        exported = await eve.get("/v1/evals/feedback/export")
        assert exported.status_code == 200, exported.text
        assert "attachment" in exported.headers["content-disposition"]
        body = exported.json()
        assert body["suite"]["corpus"] == "handbook"
        [case] = body["cases"]
        assert case["question"] == "How often should I dust the Alpha widget?"
        assert case["notes"] == "It should say <b>weekly</b>"
        assert case["tags"] == ["feedback", "feedback:down"]
        assert any(ref.endswith("widgets.md") for ref in case["reference_documents"])

    # The same cases from the command line, as a suite `lore eval run` reads.
    from evals.suite import load_suite

    command = [sys.executable, "-m", "cli", "eval", "feedback", "export", "--out", str(tmp_path)]
    env = lore_env(served.settings.data_dir)
    result = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 case from 1 rated answer over corpus handbook" in result.stdout
    suite = load_suite(tmp_path / "feedback.yaml")
    assert suite.corpus == "handbook"
    assert [c.question for c in suite.cases] == ["How often should I dust the Alpha widget?"]
    assert suite.cases[0].notes == "It should say <b>weekly</b>"


@pytest.mark.models
async def test_search_explains_each_result_by_signal(served: Served) -> None:
    response = await served.admin.post(
        "/v1/search", json={"query": "Beta gadget batteries", "corpus": "handbook", "k": 2, "explain": True}
    )
    assert response.status_code == 200, response.text
    top = response.json()["results"][0]
    assert "Beta gadget" in top["text"]
    scores = top["scores"]
    assert scores["hybrid"] == top["score"]
    assert scores["dense_rank"] == 1 and scores["sparse_rank"] == 1
    assert scores["dense"] > 0 and scores["sparse"] > 0
    plain = await served.admin.post("/v1/search", json={"query": "Beta gadget", "corpus": "handbook", "k": 1})
    assert plain.json()["results"][0]["scores"] is None


async def test_documents_are_listed_per_corpus_with_a_filter_and_pages(served: Served) -> None:
    corpora = (await served.admin.get("/v1/corpora")).json()
    handbook = next(c for c in corpora if c["name"] == "handbook")
    everything = (await served.admin.get("/v1/documents", params={"corpus_id": handbook["id"]})).json()
    assert everything["total"] == 2
    assert [Path(d["source"]).name for d in everything["documents"]] == ["gadgets.md", "widgets.md"]
    found = (
        await served.admin.get("/v1/documents", params={"corpus_id": handbook["id"], "q": "WIDG", "limit": 1})
    ).json()
    assert found["total"] == 1 and found["documents"][0]["title"] == "Widgets"
    second = (
        await served.admin.get("/v1/documents", params={"corpus_id": handbook["id"], "limit": 1, "offset": 1})
    ).json()
    assert second["total"] == 2 and Path(second["documents"][0]["source"]).name == "widgets.md"
    assert (await served.admin.get("/v1/documents", params={"corpus_id": "nope"})).status_code == 404


@pytest.mark.models
async def test_a_renamed_corpus_keeps_its_chunks_grants_and_conversations(served: Served) -> None:
    made = (await served.admin.post("/v1/corpora", json={"name": "drafts"})).json()
    upload = await served.admin.post(
        f"/v1/corpora/{made['id']}/documents",
        files={"files": ("memo.md", b"# Memo\n\nThe Gamma project ships in March.\n", "text/markdown")},
    )
    assert upload.status_code == 202, upload.text
    assert (await _finished(served.admin, upload.json()["id"]))["state"] == "succeeded"
    assert (
        await served.admin.post("/v1/grants", json={"username": "rita", "corpus": "drafts"})
    ).status_code == 201
    async with await served.bearer("rita") as rita:
        cid = (await rita.post("/v1/conversations", json={"corpus": "drafts"})).json()["id"]
        renamed = await served.admin.patch(f"/v1/corpora/{made['id']}", json={"name": "memos"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "memos" and renamed.json()["documents"] == 1
        taken = await served.admin.patch(f"/v1/corpora/{made['id']}", json={"name": "handbook"})
        assert taken.status_code == 409
        names = {c["name"] for c in (await rita.get("/v1/corpora")).json()}
        assert "memos" in names and "drafts" not in names
        hits = (
            await rita.post("/v1/search", json={"query": "Gamma project", "corpus": "memos", "k": 1})
        ).json()
        assert "Gamma project" in hits["results"][0]["text"]
        assert (await rita.get(f"/v1/conversations/{cid}")).json()["corpus"] == "memos"
        gone = await rita.post("/v1/search", json={"query": "Gamma", "corpus": "drafts", "k": 1})
        assert gone.status_code == 404
    assert (await served.admin.delete(f"/v1/corpora/{made['id']}")).status_code == 204
    assert not [c for c in await served.app.state.resources.store.collections() if "drafts" in c]


async def _finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


async def test_shipped_suites_are_listed_for_evaluators(served: Served) -> None:
    async with await served.bearer("eve") as eve:
        suites = (await eve.get("/v1/evals/suites")).json()
    assert {"python_docs", "sec10q", "scifact"} <= {s["name"] for s in suites}
    assert all(s["description"] for s in suites)


async def test_a_ticket_opens_one_url_of_the_session_for_a_minute_without_a_header(served: Served) -> None:
    corpora = (await served.admin.get("/v1/corpora")).json()
    handbook = next(c for c in corpora if c["name"] == "handbook")
    docs = (await served.admin.get("/v1/documents", params={"corpus_id": handbook["id"]})).json()["documents"]
    path = f"/v1/documents/{docs[0]['id']}/file"
    async with served.client() as browser:
        login = await browser.post("/v1/auth/session", json={"username": "rita", "password": PASSWORD})
        access = {"Authorization": f"Bearer {login.json()['access_token']}"}
        issued = await browser.post("/v1/auth/tickets", json={"path": path}, headers=access)
        assert issued.status_code == 200, issued.text
        url = issued.json()["url"]
        assert url.startswith(path + "?ticket=") and issued.json()["expires_in"] == 60
        opened = await browser.get(url)  # no Authorization header: a frame or a download
        assert opened.status_code == 200 and opened.content.startswith(b"# ")
        # Bound to its path: not another document's, nor any other route.
        ticket = url.split("ticket=", 1)[1]
        other = f"/v1/documents/{docs[1]['id']}/file?ticket={ticket}"
        assert (await browser.get(other)).status_code == 401
        assert (await browser.get(f"/v1/auth/me?ticket={ticket}")).status_code == 401
        assert (
            await browser.post("/v1/auth/tickets", json={"path": "/v1/users"}, headers=access)
        ).status_code == 422
        # An API key sends its header: no tickets for it.
        assert (await served.admin.post("/v1/auth/tickets", json={"path": path})).status_code == 422
        # The session's end ends its tickets.
        await browser.delete("/v1/auth/session", headers=access)
        assert (await browser.get(url)).status_code == 401
