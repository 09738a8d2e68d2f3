"""Crash and resume: `lore ingest` killed with SIGKILL mid-job, then run again, stores exactly the
chunks a clean run stores, and the killed job is reported as interrupted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.components.vectorstore import open_vector_store
from core.indexing import collection_name
from core.settings import Settings

pytestmark = pytest.mark.models
REPO = Path(__file__).resolve().parents[2]


def lore_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(data_dir)
    return env


def ingest(docs: Path, data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "ingest", str(docs), "--corpus", "c", "--json"],
        cwd=REPO,
        env=lore_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def documents_done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("select count(*) from ingestion_job_documents").fetchone()[0])
    except sqlite3.Error:
        return 0


async def stored_chunks(data_dir: Path) -> set[str]:
    store = await open_vector_store(Settings(data_dir=data_dir))
    try:
        return await store.chunk_ids(collection_name("c", 1))
    finally:
        await store.close()


def test_sigkill_mid_job_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(60):
        body = " ".join(f"Sentence {j} of document {i} explains part {j} of topic {i}." for j in range(15))
        (docs / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n")

    clean_dir, crashed_dir = tmp_path / "clean", tmp_path / "crashed"
    clean = ingest(docs, clean_dir)

    victim = subprocess.Popen(
        [sys.executable, "-m", "cli", "ingest", str(docs), "--corpus", "c", "--json"],
        cwd=REPO,
        env=lore_env(crashed_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while documents_done(crashed_dir / "lore.db") < 10:
        assert victim.poll() is None, "the job finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = documents_done(crashed_dir / "lore.db")
    assert 10 <= killed_at < 60

    resumed = ingest(docs, crashed_dir)

    # work done before the kill is skipped, not redone
    assert resumed["documents_unchanged"] >= 10
    assert resumed["documents_new"] + resumed["documents_unchanged"] == 60
    clean_chunks = asyncio.run(stored_chunks(clean_dir))
    assert asyncio.run(stored_chunks(crashed_dir)) == clean_chunks
    assert clean["chunks_embedded"] == len(clean_chunks)
    with sqlite3.connect(crashed_dir / "lore.db") as conn:
        states = sorted(s for (s,) in conn.execute("select state from ingestion_jobs"))
    assert states == ["interrupted", "succeeded"]
