"""Queued ingestion: two real `lore worker` processes share one job through Redis and PostgreSQL;
one is killed with SIGKILL mid-job, the other finishes it, and every document is ingested once.

The vector store: this machine has no Qdrant server, and both embedded stores (Qdrant Edge,
qdrant-client's local mode) are single-process. So each worker writes into the embedded Edge
store under its own data dir, and the corpus's chunks are the union of the two stores. That is
what one shared Qdrant server would hold, since chunk IDs derive from content and a re-written
document overwrites the same points; what it does not test is two workers writing into one
server at once. The claims, the takeover and the job's bookkeeping are all real.

One side effect of separate stores: a worker that joins after another finished documents finds
the collection new in its own store and marks the corpus's documents for re-embedding (their
``index_signature``), as it must when a collection is lost. Documents are compared without it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.components.vectorstore import open_vector_store
from core.indexing import collection_name
from core.settings import Settings

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.redis]
REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = 32
INGESTED = re.compile(
    r"worker (?P<worker>\S+) ingested (?P<source>\S+): (?P<status>\w+), (?P<chunks>\d+) chunks"
)


def lore_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(data_dir)
    env.update({f"LORE_{k.upper()}": v for k, v in settings.items()})
    return env


def lore(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_worker(env: dict[str, str], log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ingested(log: Path) -> list[str]:
    return [m["source"] for m in INGESTED.finditer(log.read_text())]


async def stored_chunks(data_dir: Path) -> set[str]:
    store = await open_vector_store(Settings(data_dir=data_dir))
    try:
        if collection_name("c", 1) not in await store.collections():
            return set()
        return await store.chunk_ids(collection_name("c", 1))
    finally:
        await store.close()


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql), params)).all()]
    finally:
        await engine.dispose()


def job_state(url: str) -> str:
    return str(asyncio.run(query(url, "select state from ingestion_jobs"))[0][0])


def test_two_workers_one_killed_mid_job_ingest_the_corpus_once(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(DOCUMENTS):
        # Several chunks each, so that the job outlasts both workers' start and one can be killed.
        body = " ".join(f"Sentence {j} of document {i} explains part {j} of topic {i}." for j in range(60))
        (docs / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{body}\n")
    sources = sorted(str(p) for p in docs.iterdir())

    # Given two workers on one queue (a name of its own, so parallel test runs do not meet)
    shared = {
        "database__url": fresh_postgres_url,
        "queue__redis_url": redis_url,
        "queue__name": f"lore:test:{uuid.uuid4().hex}",
        "queue__workers_per_job": "2",
        "queue__claim_batch": "2",
        # Short, so b takes over soon; not so short that a busy machine starves a's renewals.
        "queue__lease_s": "6",
    }
    lore("db", "upgrade", env=lore_env(tmp_path / "migrate", **shared))
    logs = {name: tmp_path / f"worker-{name}.log" for name in ("a", "b")}
    workers = {}
    for name, log in logs.items():
        with log.open("w") as out:
            workers[name] = start_worker(lore_env(tmp_path / f"worker-{name}", **shared), out)
    clean_dir = tmp_path / "clean"
    try:
        # and a single-process ingestion of the corpus as the reference (made while the workers start)
        clean = json.loads(lore("ingest", str(docs), "--corpus", "c", "--json", env=lore_env(clean_dir)))
        assert clean["documents_new"] == DOCUMENTS

        # both serving (their models loaded), so that neither finishes the job while the other starts
        deadline = time.monotonic() + 180
        while not all("Starting worker" in log.read_text() for log in logs.values()):
            assert all(w.poll() is None for w in workers.values()), [log.read_text() for log in logs.values()]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)

        # when a job is enqueued
        queued = json.loads(
            lore(
                "ingest",
                str(docs),
                "--corpus",
                "c",
                "--queue",
                "--json",
                env=lore_env(tmp_path / "cli", **shared),
            )
        )
        assert queued["state"] == "queued"
        job_id = queued["job_id"]

        # and worker a is killed after it has ingested a few documents, while it holds claims:
        # it is frozen (SIGSTOP) to read its claims, and let go again if it was between two claims
        while True:
            assert workers["a"].poll() is None, logs["a"].read_text()
            assert job_state(fresh_postgres_url) != "succeeded", "the job ended before a could be killed"
            assert time.monotonic() < deadline, "worker a never held a claim after two documents"
            if len(ingested(logs["a"])) >= 2:
                workers["a"].send_signal(signal.SIGSTOP)
                held = asyncio.run(
                    query(
                        fresh_postgres_url,
                        "select source from ingestion_job_sources where job_id = :job "
                        "and claimed_by like :a and not done",
                        job=job_id,
                        a=f"%:{workers['a'].pid}:%",
                    )
                )
                if held:
                    break
                workers["a"].send_signal(signal.SIGCONT)
            time.sleep(0.05)
        workers["a"].send_signal(signal.SIGKILL)
        workers["a"].wait()

        # then worker b takes over its claims once their lease lapses, and finishes the job
        while (state := job_state(fresh_postgres_url)) != "succeeded":
            assert state == "running", state
            assert workers["b"].poll() is None, logs["b"].read_text()
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.2)
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers.values():
            worker.wait(timeout=30)

    # every document was ingested to the end exactly once, some by each worker
    by_a, by_b = ingested(logs["a"]), ingested(logs["b"])
    assert by_a and by_b
    assert sorted(by_a + by_b) == sources
    assert {source for (source,) in held} <= set(by_b)
    recorded = asyncio.run(
        query(
            fresh_postgres_url,
            "select source, status from ingestion_job_documents where job_id = :j",
            j=job_id,
        )
    )
    assert sorted(source for source, _ in recorded) == sources
    # A document a finished writing but was killed before recording is found whole by b: unchanged.
    assert {source for source, status in recorded if status != "new"} <= {source for (source,) in held}
    assert {status for _, status in recorded} <= {"new", "unchanged"}
    counts = "select documents_new + documents_unchanged, documents_failed from ingestion_jobs where id = :j"
    assert asyncio.run(query(fresh_postgres_url, counts, j=job_id)) == [(DOCUMENTS, 0)]

    # and the corpus equals the single-process run's: its chunks and its documents
    clean_chunks = asyncio.run(stored_chunks(clean_dir))
    chunks_a = asyncio.run(stored_chunks(tmp_path / "worker-a"))
    chunks_b = asyncio.run(stored_chunks(tmp_path / "worker-b"))
    assert chunks_a | chunks_b == clean_chunks
    assert chunks_a <= clean_chunks
    documents = "select source, title, content_hash, chunk_count from documents order by source"
    with sqlite3.connect(clean_dir / "lore.db") as conn:
        expected = [tuple(row) for row in conn.execute(documents)]
    assert asyncio.run(query(fresh_postgres_url, documents)) == expected
