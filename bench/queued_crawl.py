"""Queued crawl bench: a crawl started through a real `lore serve`, run by a real `lore worker`, and
followed with `curl -N /v1/jobs/{id}/events`, then resumed with `Last-Event-ID`.

The site is a real manual (the PostgreSQL 15 manual, about 1,170 pages, or Python's, about 530),
served from 127.0.0.1 by `python -m http.server` (see bench/crawl.py). PostgreSQL and Redis are the
machine's (a fresh database and queue name per run). The serve and the worker each get their own
data dir (their embedded stores); the job's rows are shared in PostgreSQL.

1. `POST /v1/corpora/{id}/crawls` answers 202 `queued`; the worker takes the job.
2. A first `curl -N` reads the events until ``--first`` documents have been recorded, then stops.
3. A second `curl -N -H "Last-Event-ID: N"` reads from there to the `end` event.
Prints the job's kind, state, where it ran, pages, documents and chunks per second, the seconds to
the first document event, and the checks: every document's event seen exactly once across the two
streams, in order, and the end state. The last line is everything as one JSON object.

    python bench/queued_crawl.py --site postgresql --max-pages 1200   # the acceptance run
    python bench/queued_crawl.py --site python --max-pages 100        # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.crawl import ensure_site, static_server  # noqa: E402
from tests.conftest import create_user_with_key, new_postgres_database  # noqa: E402
from tests.served import lore_env, served_process, worker_process  # noqa: E402

# --raw FILE: the streams as curl printed them, appended (to look at what a check found).
RAW: Path | None = None


def parse_events(text: str) -> list[dict[str, Any]]:
    events, event = [], {}
    for line in text.splitlines():
        if not line:
            if event:
                events.append(event)
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    if event:
        events.append(event)
    return events


def curl(
    base: str, key: str, job_id: str, *, last: int | None, stop_after: int | None
) -> tuple[list[dict[str, Any]], float]:
    """`curl -N` the job's events (from ``last``); stop after ``stop_after`` document events."""
    command = ["curl", "-sN", "-H", f"Authorization: Bearer {key}", f"{base}/v1/jobs/{job_id}/events"]
    if last is not None:
        command[2:2] = ["-H", f"Last-Event-ID: {last}"]
    started, first_document = time.monotonic(), 0.0
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    documents, in_document = 0, False
    for line in process.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if line == "event: document":
            in_document = True
            first_document = first_document or time.monotonic() - started
        elif not line and in_document:
            # The document's event is whole (its id and data read) at the blank line that ends it.
            in_document, documents = False, documents + 1
            if stop_after is not None and documents >= stop_after:
                break
    process.kill()
    process.wait()
    if RAW is not None:
        with RAW.open("a") as raw:
            raw.write("\n".join(lines) + "\n\n")
    return parse_events("\n".join(lines) + "\n\n"), first_document


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = ensure_site(args.site)
    postgres = os.environ.get("LORE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    redis = os.environ.get("LORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    from core.settings import DatabaseSettings, Settings

    with tempfile.TemporaryDirectory(prefix="lore-queued-crawl-") as tmp, static_server(root) as site:
        work = Path(tmp)
        async with new_postgres_database(postgres) as database:
            shared = {
                "database__url": database,
                "queue__redis_url": redis,
                "queue__name": f"lore:bench:{uuid.uuid4().hex}",
                "ingestion__crawl__per_host_delay_s": "0",
                "ingestion__crawl__max_pages": str(args.max_pages),
            }
            key = await create_user_with_key(
                Settings(data_dir=work / "keys", database=DatabaseSettings(url=database)),
                "admin",
                role="admin",
            )
            with (
                worker_process(lore_env(work / "worker", **shared), work / "worker.log") as worker,
                served_process(lore_env(work / "serve", **shared), work / "serve.log") as base,
            ):
                import httpx

                headers = {"Authorization": f"Bearer {key}"}
                async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
                    corpus = (await client.post("/v1/corpora", json={"name": "manual"})).json()
                    started = time.monotonic()
                    accepted = await client.post(
                        f"/v1/corpora/{corpus['id']}/crawls",
                        json={
                            "urls": [site + "/index.html"],
                            "allow_hosts": ["127.0.0.1"],
                            "max_pages": args.max_pages,
                        },
                    )
                    assert accepted.status_code == 202, accepted.text
                    job_id = accepted.json()["id"]
                    first, to_first = await asyncio.to_thread(
                        curl, base, key, job_id, last=None, stop_after=args.first
                    )
                    last = max(int(e["id"]) for e in first if e.get("event") == "document")
                    rest, _ = await asyncio.to_thread(curl, base, key, job_id, last=last, stop_after=None)
                    elapsed = time.monotonic() - started
                    job = (await client.get(f"/v1/jobs/{job_id}")).json()
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(database)
            async with engine.connect() as conn:
                ran_on = (
                    await conn.execute(
                        text("select worker from ingestion_jobs where id = :id"), {"id": job_id}
                    )
                ).scalar_one()
            await engine.dispose()
    ids = [int(e["id"]) for e in first + rest if e.get("event") == "document"]
    return {
        "site": args.site,
        "job": job_id,
        "kind": job["kind"],
        "state": job["state"],
        "ran_on_worker": ran_on == f"{socket.gethostname()}:{worker.pid}",
        "documents": job["documents_done"],
        "documents_new": job["documents_new"],
        "documents_failed": job["documents_failed"],
        "chunks": job["chunks_embedded"],
        "seconds": round(elapsed, 1),
        "documents_per_s": job["documents_per_s"],
        "chunks_per_s": job["chunks_per_s"],
        "first_document_event_s": round(to_first, 1),
        "first_stream_documents": sum(e.get("event") == "document" for e in first),
        "second_stream_documents": sum(e.get("event") == "document" for e in rest),
        "progress_events": sum(e.get("event") == "progress" for e in first + rest),
        "check_each_document_once_in_order": ids == list(range(1, job["documents_done"] + 1)),
        "check_second_stream_ends": bool(rest) and rest[-1].get("event") == "end",
        "check_end_state": json.loads(rest[-1]["data"])["state"] if rest and "data" in rest[-1] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--site", choices=("python", "postgresql"), default="postgresql")
    parser.add_argument("--max-pages", type=int, default=1200)
    parser.add_argument(
        "--first", type=int, default=50, help="Documents the first curl reads before it stops."
    )
    parser.add_argument("--raw", type=Path, help="Append the raw event streams to this file.")
    args = parser.parse_args()
    global RAW
    RAW = args.raw
    result = asyncio.run(main_async(args))
    for key, value in result.items():
        print(f"{key:36} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
