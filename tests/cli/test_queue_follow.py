"""`lore ingest --queue --follow` and `lore reindex --queue --follow`: real CLI processes put the jobs
on the Redis queue, a real `lore worker` runs them, and the CLI follows each to its end through the
job's events (PostgreSQL shared; the worker's embedded store holds the corpus)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.served import REPO, lore_env, worker_process

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def lore(env: dict[str, str], *args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        printed = json.loads(done.stdout)
    except json.JSONDecodeError:
        printed = done.stdout
    return done.returncode, printed, done.stderr


def test_queued_ingest_and_reindex_run_on_a_worker_and_the_cli_follows_them_to_the_end(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"d{i}.md").write_text(f"# Part {i}\n\nPart {i} of the manual covers the pump's step {i}.\n")
    (docs / "broken.pdf").write_bytes(b"not a pdf")
    shared = {
        "database__url": fresh_postgres_url,
        "queue__redis_url": redis_url,
        "queue__name": f"lore:test:{uuid.uuid4().hex}",
    }
    cli = lore_env(tmp_path / "cli", **shared)
    assert lore(cli, "db", "upgrade")[0] == 0
    with worker_process(lore_env(tmp_path / "worker", **shared), tmp_path / "worker.log"):
        # The CLI waits for the worker (it starts meanwhile), following the job's events.
        status, job, stderr = lore(
            cli, "ingest", str(docs), "--corpus", "manual", "--queue", "--follow", "--json"
        )
        assert status == 1, stderr  # one document failed: the exit status says so
        assert (job["kind"], job["state"], job["documents_new"], job["documents_failed"]) == (
            "ingest",
            "succeeded",
            6,
            1,
        ), job
        assert [Path(f["source"]).name for f in job["failures"]] == ["broken.pdf"]

        status, reindexed, stderr = lore(
            cli, "reindex", "--corpus", "manual", "--chunk-tokens", "64", "--queue", "--follow", "--json"
        )
        assert status == 0, stderr
        assert (reindexed["kind"], reindexed["state"], reindexed["documents_changed"]) == (
            "reindex",
            "succeeded",
            6,
        )

        # Without --follow (and no terminal) the CLI returns at once with the queued job.
        status, queued, stderr = lore(cli, "ingest", str(docs), "--corpus", "manual", "--queue", "--json")
        assert status == 0 and queued["state"] == "queued", stderr
        _, listed, _ = lore(cli, "jobs", "list", "--json")
        assert {j["kind"] for j in listed} == {"ingest", "reindex"}
    assert f"job {job['id']} succeeded" in (tmp_path / "worker.log").read_text()
