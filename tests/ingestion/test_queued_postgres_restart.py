"""A `lore worker` outlives a PostgreSQL restart: jobs enqueued before and after are both ingested,
and a job running when the database stops is finished once it is back.

The test owns its PostgreSQL (tests/restartable.py); the queue is the shared Redis, on a queue
name of its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.restartable import postgres_server
from tests.served import REPO, lore_env

pytestmark = [pytest.mark.models, pytest.mark.redis, pytest.mark.slow]


def lore(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _job_state(url: str, job_id: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            state = await conn.scalar(text("select state from ingestion_jobs where id = :id"), {"id": job_id})
            return None if state is None else str(state)
    except OSError:
        return None  # the database is down: no state to read
    finally:
        await engine.dispose()


def wait_for_state(
    url: str, job_id: str, worker: subprocess.Popen[str], log: Path, timeout_s: float = 180
) -> str:
    deadline = time.monotonic() + timeout_s
    while (state := asyncio.run(_job_state(url, job_id))) not in ("succeeded", "failed", "cancelled"):
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"job {job_id} is {state}: {log.read_text()[-3000:]}"
        time.sleep(0.2)
    return state


def write_docs(root: Path, name: str, count: int, sentences: int) -> Path:
    docs = root / name
    docs.mkdir()
    for i in range(count):
        body = " ".join(f"Sentence {j} of {name} {i} tells of part {j}." for j in range(sentences))
        (docs / f"{name}{i:02d}.md").write_text(f"# {name} {i}\n\n{body}\n")
    return docs


def test_a_worker_ingests_jobs_across_a_postgres_restart(tmp_path: Path, redis_url: str) -> None:
    with postgres_server() as postgres:
        shared = {
            "database__url": postgres.url,
            "queue__redis_url": redis_url,
            "queue__name": f"lore:test:{uuid.uuid4().hex}",
            "queue__workers_per_job": "1",
            "queue__lease_s": "5",
        }
        lore("db", "upgrade", env=lore_env(tmp_path / "migrate", **shared))
        log = tmp_path / "worker.log"
        with log.open("w") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"],
                cwd=REPO,
                env=lore_env(tmp_path / "worker", **shared),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        cli = lore_env(tmp_path / "cli", **shared)
        try:
            # Given a worker that ingested a job
            before = json.loads(
                lore("ingest", str(write_docs(tmp_path, "before", 2, 5)), "--queue", "--json", env=cli)
            )
            assert wait_for_state(postgres.url, before["job_id"], worker, log) == "succeeded"

            # when a longer job is running and PostgreSQL stops, then starts again
            during = json.loads(
                lore("ingest", str(write_docs(tmp_path, "during", 24, 60)), "--queue", "--json", env=cli)
            )
            deadline = time.monotonic() + 120
            while asyncio.run(_job_state(postgres.url, during["job_id"])) != "running":
                assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
                time.sleep(0.05)
            postgres.stop()
            # Longer than a lease renewal's interval: the worker meets the outage mid-job.
            time.sleep(4)
            postgres.start()

            # then the running job still finishes, and a job enqueued after the restart is ingested
            after = json.loads(
                lore("ingest", str(write_docs(tmp_path, "after", 2, 5)), "--queue", "--json", env=cli)
            )
            assert wait_for_state(postgres.url, during["job_id"], worker, log) == "succeeded", (
                log.read_text()[-3000:]
            )
            assert wait_for_state(postgres.url, after["job_id"], worker, log) == "succeeded"
            assert worker.poll() is None
            # the job's run met the outage and was run again, not left running for good
            assert "trying again in" in log.read_text()
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
