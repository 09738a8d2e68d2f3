"""Load test: N authenticated clients against `lore serve` for a fixed time.

By default it sets everything up itself in a temporary data dir: ingests `data/`, creates a
reader with a grant and an API key per client, starts `lore serve` on a free local port, runs the
load, and stops the server. Each client loops over a mix of routes:

- `POST /v1/query` (whole answer; repeats of a question are served from the exact-repeat cache),
- `POST /v1/query/stream` (SSE, read to the end) inside the client's own conversation,
- `GET /v1/conversations/{id}` and `GET /v1/conversations`, `GET /v1/corpora` (reads).

Prints requests/s, p50/p95/p99 latency per route, the error count (any non-2xx, timeout or broken
stream is an error) and the server's peak RSS.

    python bench/load.py                       # 32 clients, 60 s
    python bench/load.py --clients 8 --seconds 20
    python bench/load.py --url http://127.0.0.1:8000 --key lore_...   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from lore_server import REPO, lore, serving

QUESTIONS = [
    json.loads(line)["question"] for line in (REPO / "data/evals/sample.jsonl").read_text().splitlines()
]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def local_server(clients: int) -> Iterator[tuple[str, list[str], int]]:
    """A fresh `lore serve` with the sample corpus and one reader API key per client."""
    with tempfile.TemporaryDirectory(prefix="lore-load-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
        env["LORE_DATA_DIR"] = str(Path(tmp) / "lore")
        # The bench measures capacity, not the limiter: lift the per-key budgets out of the way.
        env |= {"LORE_RATE_LIMIT__QUERY_PER_MINUTE": "1000000", "LORE_RATE_LIMIT__QUERY_BURST": "100000"}
        print("setting up: ingest data/, create a reader and keys ...", file=sys.stderr)
        lore(env, "ingest", str(REPO / "data"), "--json")
        lore(
            env,
            "users",
            "create",
            "bench",
            "--role",
            "reader",
            "--password-stdin",
            stdin="bench-password-123\n",
        )
        lore(env, "grants", "add", "bench", "default")
        keys = [
            lore(env, "keys", "create", "--user", "bench", "--name", f"client-{i}").strip().splitlines()[-1]
            for i in range(clients)
        ]
        with serving(env, Path(tmp) / "server.log", start_timeout_s=120) as (url, pid):
            yield url, keys, pid


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []

    def ok(self, route: str, seconds: float) -> None:
        self.latencies[route].append(seconds * 1000)

    def error(self, route: str, what: str) -> None:
        self.errors[route] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{route}: {what}")


async def client(url: str, key: str, stop_at: float, rec: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
        conversation = (await http.post("/v1/conversations", json={"title": f"load {seed}"})).json()["id"]
        while time.monotonic() < stop_at:
            roll = rng.random()
            question = rng.choice(QUESTIONS)
            start = time.perf_counter()
            try:
                if roll < 0.25:
                    route = "POST /v1/query"
                    response = await http.post("/v1/query", json={"question": question})
                elif roll < 0.45:
                    route = "POST /v1/query/stream"
                    body = {"question": question, "conversation_id": conversation}
                    async with http.stream("POST", "/v1/query/stream", json=body) as response:
                        text = "".join([part async for part in response.aiter_text()])
                    if response.status_code == 200 and "event: done" not in text:
                        rec.error(route, "stream ended without a done event")
                        continue
                elif roll < 0.7:
                    route = "GET /v1/conversations/{id}"
                    response = await http.get(f"/v1/conversations/{conversation}")
                elif roll < 0.85:
                    route = "GET /v1/conversations"
                    response = await http.get("/v1/conversations")
                else:
                    route = "GET /v1/corpora"
                    response = await http.get("/v1/corpora")
            except httpx.HTTPError as exc:
                rec.error(route, repr(exc))
                continue
            if response.status_code >= 300:
                rec.error(route, f"HTTP {response.status_code}: {response.text[:200]}")
            else:
                rec.ok(route, time.perf_counter() - start)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def run(url: str, keys: list[str], seconds: float, pid: int | None) -> int:
    rec = Recorder()
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set() and pid is not None:
            peak[0] = max(peak[0], _rss_kb(pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    await asyncio.gather(*(client(url, key, started + seconds, rec, i) for i, key in enumerate(keys)))
    elapsed = time.monotonic() - started
    sampling.set()
    sampler.join()

    total = sum(len(v) for v in rec.latencies.values())
    errors = sum(rec.errors.values())
    print(f"\n{len(keys)} clients, {seconds:.0f} s of load ({elapsed:.1f} s until the last request ended)")
    print(f"{'route':30} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for route in sorted(set(rec.latencies) | set(rec.errors)):
        lat = rec.latencies.get(route, [])
        cells = [f"{_pct(lat, p):9.1f}" for p in (0.5, 0.95, 0.99)] if lat else [f"{'-':>9}"] * 3
        print(f"{route:30} {len(lat):6d} {' '.join(cells)} {rec.errors.get(route, 0):7d}")
    print(f"requests/s: {total / elapsed:.2f}   completed: {total}   errors: {errors}")
    if lat_all := [x for v in rec.latencies.values() for x in v]:
        print(f"all routes: p50 {statistics.median(lat_all):.1f} ms")
    if pid is not None:
        print(f"server peak RSS: {peak[0] / 1024:.0f} MiB")
    for line in rec.samples:
        print(f"error sample: {line}")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--url", help="an already running server (needs --key)")
    parser.add_argument("--key", help="API key or access token for --url (all clients share it)")
    parser.add_argument("--server-pid", type=int, help="PID of the --url server, for its RSS")
    args = parser.parse_args()
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        code = asyncio.run(run(args.url, [args.key] * args.clients, args.seconds, args.server_pid))
    else:
        with local_server(args.clients) as (url, keys, pid):
            code = asyncio.run(run(url, keys, args.seconds, pid))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
