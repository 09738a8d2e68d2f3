"""WebSocket chat: authentication at connect, ownership of the conversation, the caller's scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from core.settings import LLMSettings, Settings

pytestmark = pytest.mark.models


@dataclass
class WsWorld:
    client: TestClient
    keys: dict[str, str]


async def _prepare(root: Path, settings: Settings, user_key: Callable[..., Any]) -> dict[str, str]:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    keys = {
        "alice": await user_key(settings, "alice", role="reader", grants=("shared",)),
        "bob": await user_key(settings, "bob", role="reader"),
    }
    async with open_resources(settings, with_llm=False) as resources:
        for corpus, text in (
            ("shared", "The shared widget is red."),
            ("private", "The private widget is violet."),
        ):
            docs = root / corpus
            docs.mkdir()
            (docs / f"{corpus}.md").write_text(f"# {corpus}\n\n{text}\n")
            await ingest_paths(resources, [docs], corpus=corpus)
    return keys


@pytest.fixture(scope="module")
def ws_world(tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]) -> Iterator[WsWorld]:
    """A served app (its lifespan runs in the TestClient's own loop) with two readers and two corpora."""
    root = tmp_path_factory.mktemp("ws")
    settings = Settings(data_dir=root / "lore", llm=LLMSettings(max_tokens=16))
    keys = asyncio.run(_prepare(root, settings, user_key))
    with TestClient(create_app(settings)) as client:
        yield WsWorld(client=client, keys=keys)


def test_websocket_refuses_bad_credentials(ws_world: WsWorld) -> None:
    for url in ("/v1/ws", "/v1/ws?token=lore_not-a-real-key", "/v1/ws?token=not.a.jwt"):
        with ws_world.client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def ask(ws: Any, question: dict[str, Any]) -> list[dict[str, Any]]:
    ws.send_text(json.dumps({"type": "question", **question}))
    events = [ws.receive_json()]
    while events[-1]["type"] not in ("done", "error"):
        events.append(ws.receive_json())
    return events


def test_websocket_chat_streams_within_the_callers_scope(ws_world: WsWorld) -> None:
    with ws_world.client.websocket_connect(f"/v1/ws?token={ws_world.keys['alice']}") as ws:
        opened = ws.receive_json()
        events = ask(ws, {"question": "What colour is the private widget?"})
        refused = ask(ws, {"question": "x", "corpus": "private"})
        ws.send_text(json.dumps({"type": "ping"}))
        pong = ws.receive_json()
        ws.send_text("not json")
        invalid = ws.receive_json()
    assert opened["type"] == "conversation"
    kinds = [e["type"] for e in events]
    assert kinds[0] == "token" and kinds[-2:] == ["citations", "done"]
    citations = events[-2]["citations"]
    assert all("private" not in c["source"] for c in citations)
    assert refused == [
        {
            "type": "error",
            "code": "not_found",
            "message": "no corpus named 'private'; ingest documents into it first",
        }
    ]
    assert pong == {"type": "pong"}
    assert invalid["type"] == "error" and invalid["code"] == "invalid_input"


def test_websocket_conversation_belongs_to_its_owner(ws_world: WsWorld) -> None:
    with ws_world.client.websocket_connect(f"/v1/ws?token={ws_world.keys['alice']}") as ws:
        conversation = ws.receive_json()["id"]
        ask(ws, {"question": "What colour is the shared widget?"})
    url = f"/v1/ws?token={ws_world.keys['bob']}&conversation_id={conversation}"
    with ws_world.client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4404
    # the exchange was saved in alice's conversation
    saved = ws_world.client.get(
        f"/v1/conversations/{conversation}", headers={"Authorization": f"Bearer {ws_world.keys['alice']}"}
    ).json()
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"]
    assert saved["messages"][1]["status"] == "complete"


def test_websocket_strikes_a_sentence_no_source_supports(ws_world: WsWorld) -> None:
    from tests.fakes import ScriptedLLM

    resources = ws_world.client.app.state.resources  # type: ignore[attr-defined]
    original = resources._llm
    resources._llm = ScriptedLLM("The shared widget is red [1]. It weighs 40 grams [1].")
    try:
        with ws_world.client.websocket_connect(f"/v1/ws?token={ws_world.keys['alice']}") as ws:
            ws.receive_json()
            events = ask(ws, {"question": "What colour is the scripted shared widget?"})
    finally:
        resources._llm = original
    assert [e["type"] for e in events] == ["token", "sentence_removed", "citations", "done"]
    assert events[0]["text"] == "The shared widget is red [1]."
    assert events[1]["reason"] == "`40 grams` is in no source"
    assert events[-1]["answer"] == "The shared widget is red [1]."


def test_websocket_refuses_nul_in_its_url_and_its_frames(ws_world: WsWorld) -> None:
    key = ws_world.keys["alice"]
    url = f"/v1/ws?token={key}&conversation_id=%00"
    with pytest.raises(WebSocketDisconnect) as refused, ws_world.client.websocket_connect(url) as ws:
        ws.receive_json()
    assert refused.value.code == 1008
    with ws_world.client.websocket_connect(f"/v1/ws?token={key}") as ws:
        ws.receive_json()
        for frame in (
            {"type": "question", "question": "wid\x00get?"},
            {"type": "question", "question": "x", "corpus": "\ud800"},
        ):
            ws.send_text(json.dumps(frame))
            error = ws.receive_json()
            assert error["type"] == "error" and error["code"] == "invalid_input", error
        assert ask(ws, {"question": "What colour is the shared widget?"})[-1]["type"] == "done"
