"""/v1/ws through a real `lore serve` process and a real WebSocket client.

Starlette's TestClient speaks WebSocket without any server library, so only a served process shows
whether uvicorn can upgrade the connection at all (it answered 404 while none was installed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from core.settings import Settings
from tests.served import lore_env, served_process

pytestmark = pytest.mark.models


async def receive(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await ws.recv())
    return event


async def test_a_websocket_conversation_through_lore_serve(
    tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    # Given a served corpus and a reader granted it
    data_dir = tmp_path / "lore"
    settings = Settings(data_dir=data_dir)
    key = await user_key(settings, "alice", role="reader", grants=("widgets",))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe shared widget is red.\n")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="widgets")
    env = lore_env(data_dir, llm__max_tokens="16", cache__semantic="false")

    with served_process(env, tmp_path / "serve.log") as base:
        url = base.replace("http://", "ws://") + f"/v1/ws?token={key}"
        # when the reader opens a WebSocket and asks a question
        async with connect(url, open_timeout=30) as ws:
            opened = await receive(ws)
            await ws.send(json.dumps({"type": "question", "question": "What colour is the shared widget?"}))
            events = [await receive(ws)]
            while events[-1]["type"] not in ("done", "error"):
                events.append(await receive(ws))

    # then the answer streams as tokens, then its citations, then done
    assert opened["type"] == "conversation" and opened["id"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "token" and kinds[-2:] == ["citations", "done"], events
    assert set(kinds[:-2]) == {"token"}
    assert "".join(e["text"] for e in events[:-2]).strip()
    assert [c["source"] for c in events[-2]["citations"]] == [str((docs / "widgets.md").resolve())]
    assert events[-1]["cached"] is False
