"""Batches on the job queue: with ``LORE_QUEUE__REDIS_URL`` set, POST /v1/batches puts the batch on
the Redis queue instead of answering it in the server, and a real `lore worker` process answers it
(PostgreSQL shared; the vector store is the embedded one, so the server stops before the worker
opens the same data dir: both embedded stores are single-process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.batches import service
from core.db.engine import create_engine, session_factory
from core.settings import CacheSettings, DatabaseSettings, LLMSettings, QueueSettings, Settings
from tests.served import REPO, lore_env, served_corpus

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
JSONL = {"Content-Type": "application/jsonl"}


async def _counts(settings: Settings, batch_id: str) -> tuple[str, dict[str, int], list[dict[str, Any]]]:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            row = await service.get_batch(session, batch_id)
            counts = (await service.line_counts(session, [batch_id]))[batch_id]
            return row.state, counts, await service.output(session, row)
    finally:
        await engine.dispose()


async def test_a_queued_batch_is_answered_by_lore_worker(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str, user_key: Callable[..., Any]
) -> None:
    # Given a server with a queue, and a reader granted the handbook
    queue = QueueSettings(redis_url=redis_url, name=f"lore-test:{uuid.uuid4().hex[:8]}")
    settings = Settings(
        data_dir=tmp_path / "lore",
        database=DatabaseSettings(url=fresh_postgres_url),
        cache=CacheSettings(semantic=False),
        llm=LLMSettings(max_tokens=24),
        queue=queue,
    )
    key = await user_key(settings, "alice", role="reader", grants=("handbook",))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    lines = [
        json.dumps({"custom_id": f"q{n}", "question": "What colour is the Alpha widget?"}) for n in range(4)
    ]
    lines.insert(2, "{oops")

    # when a batch is submitted
    async with served_corpus(settings, docs, key) as (_, client):
        reply = await client.post("/v1/batches?corpus=handbook", content="\n".join(lines), headers=JSONL)
        assert reply.status_code == 202, reply.text
        batch_id = reply.json()["id"]
        status = (await client.get(f"/v1/batches/{batch_id}")).json()
    # then the server leaves it to the queue: nothing is answered in the server
    assert (status["state"], status["done"], status["pending"]) == ("pending", 0, 4), status

    # when a worker serves the queue until it is empty
    env = lore_env(
        settings.data_dir,
        database__url=fresh_postgres_url,
        queue__redis_url=redis_url,
        queue__name=queue.name,
        llm__max_tokens="24",
        cache__semantic="false",
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "worker", "--burst"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    # then it answered every well-formed line once, and the malformed one failed alone
    state, counts, output = await _counts(settings, batch_id)
    assert state == "completed", (counts, done.stderr[-3000:])
    assert (counts["done"], counts["failed"], counts["pending"]) == (4, 1, 0), counts
    assert [line["custom_id"] for line in output if line["state"] == "done"] == ["q0", "q1", "q2", "q3"]
    assert all(line["answer"] for line in output if line["state"] == "done")
