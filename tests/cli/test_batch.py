"""`lore batch` as a user runs it, and killed: SIGKILL mid-batch, run it again, and every line is
answered exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from tests.conftest import create_user_with_key
from tests.served import REPO, lore_env, serve_process

pytestmark = pytest.mark.models


def _lore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )


def _lines(db: Path) -> list[tuple[int, str, int, int]]:
    with sqlite3.connect(db) as con:
        return list(con.execute("SELECT n, state, attempts, answers FROM batch_lines ORDER BY n"))


@pytest.mark.slow
def test_a_killed_batch_resumes_and_answers_every_line_exactly_once(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe widget is red. The gadget is blue.\n")
    data_dir = tmp_path / "lore"
    env = lore_env(data_dir, batch__concurrency="1")
    assert _lore(env, "ingest", str(docs), "--corpus", "handbook").returncode == 0
    questions = tmp_path / "questions.jsonl"
    # Each question is new (no cache hit), so the batch takes long enough to be killed part way.
    questions.write_text(
        "\n".join(
            json.dumps({"custom_id": f"q{n}", "question": f"What colour is the widget in note {n}?"})
            for n in range(150)
        )
        + "\n{not json\n"
    )
    batch_id = "00000000-0000-4000-8000-000000000001"
    args = ("batch", "submit", str(questions), "--corpus", "handbook", "--id", batch_id)
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
    )
    db = data_dir / "lore.db"
    deadline = time.monotonic() + 240
    try:
        while True:
            assert process.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no line was answered in time"
            try:
                if sum(1 for _, state, _, _ in _lines(db) if state == "done") >= 5:
                    break
            except sqlite3.OperationalError:
                pass  # the tables are not there yet
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    at_kill = _lines(db)
    assert any(state == "pending" for _, state, _, _ in at_kill), "the batch finished before the kill"

    second = _lore(env, *args)
    assert second.returncode == 0, second.stderr
    after = _lines(db)
    assert len(after) == 151
    assert [state for _, state, _, _ in after] == ["done"] * 150 + ["failed"]
    # Recorded once each; only a line cut off mid-answer (concurrency 1: at most one) began twice.
    assert all(answers == 1 for _, _, _, answers in after[:150])
    assert sum(attempts for _, _, attempts, _ in after[:150]) - 150 <= 1
    done_before = {n for n, state, _, _ in at_kill if state == "done"}
    assert all(attempts == 1 for n, _, attempts, _ in after if n in done_before)

    output = _lore(env, "batch", "output", batch_id)
    assert output.returncode == 0, output.stderr
    results = [json.loads(line) for line in output.stdout.splitlines()]
    assert [r["custom_id"] for r in results] == [f"q{n}" for n in range(150)] + [None]
    assert all(r["answer"] and r["error"] is None for r in results[:150])
    assert results[150]["error"]["message"].startswith("not JSON")
    status = _lore(env, "batch", "status", batch_id)
    assert '"state": "completed"' in status.stdout


@pytest.mark.slow
def test_a_batch_on_a_killed_lore_serve_resumes_at_its_next_start(tmp_path: Path) -> None:
    """The API's batches: lore serve SIGKILLed mid-batch, started again on the same data dir, goes on
    with the batch at start-up and answers every line exactly once."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe widget is red. The gadget is blue.\n")
    data_dir = tmp_path / "lore"
    env = lore_env(data_dir, batch__concurrency="1", rate_limit__enabled="false")
    assert _lore(env, "ingest", str(docs), "--corpus", "handbook").returncode == 0
    key = asyncio.run(create_user_with_key(Settings(data_dir=data_dir), "alice", grants=("handbook",)))
    asked = "What colour is the widget in note {}?"
    body = "\n".join(json.dumps({"custom_id": f"q{n}", "question": asked.format(n)}) for n in range(60))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/jsonl"}
    db, log = data_dir / "lore.db", tmp_path / "serve.log"
    with serve_process(env, log) as (process, base):
        reply = httpx.post(f"{base}/v1/batches?corpus=handbook", content=body, headers=headers, timeout=60)
        assert reply.status_code == 202, reply.text
        batch_id = reply.json()["id"]
        deadline = time.monotonic() + 240
        while sum(1 for _, state, _, _ in _lines(db) if state == "done") < 5:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    at_kill = _lines(db)
    assert any(state == "pending" for _, state, _, _ in at_kill), "the batch finished before the kill"

    with serve_process(env, log) as (_, base):
        deadline = time.monotonic() + 400
        while True:
            status = httpx.get(f"{base}/v1/batches/{batch_id}", headers=headers, timeout=30).json()
            if status["state"] == "completed":
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        output = httpx.get(f"{base}/v1/batches/{batch_id}/output", headers=headers, timeout=30)
    after = _lines(db)
    assert [state for _, state, _, _ in after] == ["done"] * 60
    assert all(answers == 1 for _, _, _, answers in after)
    assert sum(attempts for _, _, attempts, _ in after) - 60 <= 1
    assert "resuming batch" in log.read_text()
    results = [json.loads(line) for line in output.text.splitlines()]
    assert [r["custom_id"] for r in results] == [f"q{n}" for n in range(60)]
