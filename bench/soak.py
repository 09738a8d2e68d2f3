"""Soak: mixed traffic at a fixed rate against a real `lore serve` for minutes; errors, latency, RSS.

Sets everything up itself in a temporary data dir: ingests `data/` into the `default` corpus,
creates a reader (granted `default`) and an admin with an API key each, a `soak` corpus for
writes, and a small site of linked HTML pages served from 127.0.0.1; then starts `lore serve` on a
free local port. Requests start at ``--rate`` per second (open loop: a slow answer does not slow
the rate; at most ``--concurrency`` in flight), each picked at random by weight:

- reader: `POST /v1/search`, `POST /v1/query` (the sample questions, so repeats hit the answer
  cache), `GET /v1/conversations/{id}` and `GET /v1/conversations`;
- admin: an upload of one Markdown file to `soak` (one of 20 names, new content each time: the
  document is replaced, so the corpus keeps its size), a crawl of the loopback site, and
  `GET /v1/jobs/{id}` of the latest job.

Every upload and crawl job is followed to its end; a job that does not end `succeeded` with no
failed documents is an error, as is any non-2xx answer, timeout or broken connection. The server's
RSS is read from /proc every ``--rss-every-s`` seconds. The first ``--warmup-s`` seconds run the
same traffic but are kept out of the latency and RSS figures (models and caches fill then);
errors count throughout. Prints errors by route and status, p50/p95/p99 per route, the RSS series,
the slope of its least-squares line (% per 10 minutes) and the first-vs-last-minute change.
Exits 1 on any error or when RSS moves more than 5%.

    python bench/soak.py                         # 10 minutes at 2 requests/s
    python bench/soak.py --minutes 2 --rate 1    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from crawl import static_server
from lore_server import REPO, lore, serving

QUESTIONS = [
    json.loads(line)["question"] for line in (REPO / "data/evals/sample.jsonl").read_text().splitlines()
]
SEARCHES = [*QUESTIONS, "leave policy", "how do I configure the cache", "pdf extraction", "deploy"]
UPLOAD_NAMES = 20
SITE_PAGES = 6
FLAT_WITHIN_PCT = 5.0
# (operation, weight): reads dominate, as they do in use.
MIX = (
    ("search", 35),
    ("query", 15),
    ("conversation", 20),
    ("conversations", 15),
    ("upload", 6),
    ("crawl", 2),
    ("job", 7),
)


@dataclass
class Keys:
    reader: str
    admin: str
    soak_corpus: str
    conversation: str


@dataclass
class Recorder:
    measuring: bool = False
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    sent: int = 0
    skipped: int = 0

    def ok(self, route: str, seconds: float) -> None:
        if self.measuring:
            self.latencies[route].append(seconds * 1000)

    def error(self, route: str, what: str, detail: str) -> None:
        self.errors[(route, what)] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{route}: {what}: {detail[:300]}")


def write_site(root: Path) -> None:
    """``SITE_PAGES`` linked pages: an index linking each page, each page linking the next."""
    links = "".join(f'<li><a href="page{i}.html">Page {i}</a></li>' for i in range(SITE_PAGES))
    (root / "index.html").write_text(
        f"<html><head><title>Soak site</title></head><body><main>"
        f"<h1>Soak site</h1><p>Pages about widgets.</p><ul>{links}</ul></main></body></html>"
    )
    for i in range(SITE_PAGES):
        (root / f"page{i}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><main><h1>Widget {i}</h1>"
            f"<p>Widget {i} needs {i + 2} bolts and a spanner of size {10 + i} millimetres.</p>"
            f'<p><a href="page{(i + 1) % SITE_PAGES}.html">next</a></p></main></body></html>'
        )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def slope_pct_per_10_min(series: list[tuple[float, int]]) -> float:
    """The least-squares slope of RSS over time, as percent of the mean RSS per 10 minutes."""
    n = len(series)
    mean_t = sum(t for t, _ in series) / n
    mean_r = sum(r for _, r in series) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in series)
    if var_t == 0:
        return 0.0
    slope = sum((t - mean_t) * (r - mean_r) for t, r in series) / var_t
    return slope * 600 / mean_r * 100


@contextmanager
def local_server() -> Iterator[tuple[str, int, dict[str, str]]]:
    """A fresh `lore serve` with the sample corpus, a reader and an admin: URL, PID and their keys."""
    with tempfile.TemporaryDirectory(prefix="lore-soak-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
        env["LORE_DATA_DIR"] = str(Path(tmp) / "lore")
        # The soak measures steadiness, not the limiter; short answers keep the in-process LLM's
        # queue short on a small CPU.
        env |= {
            "LORE_RATE_LIMIT__ENABLED": "false",
            "LORE_LLM__MAX_TOKENS": "64",
            "LORE_INGESTION__CRAWL__PER_HOST_DELAY_S": "0",
        }
        print("setting up: ingest data/, create a reader, an admin and keys ...", file=sys.stderr)
        lore(env, "ingest", str(REPO / "data"), "--json")
        keys: dict[str, str] = {}
        for user, role in (("soak-reader", "reader"), ("soak-admin", "admin")):
            lore(
                env, "users", "create", user, "--role", role, "--password-stdin", stdin="soak-password-123\n"
            )
            keys[role] = (
                lore(env, "keys", "create", "--user", user, "--name", "soak").strip().splitlines()[-1]
            )
        lore(env, "grants", "add", "soak-reader", "default")
        with serving(env, Path(tmp) / "server.log", start_timeout_s=180) as (url, pid):
            yield url, pid, keys


class Traffic:
    """The operations of the mix, each one request (or, for a job's end, a short poll)."""

    def __init__(
        self, reader: httpx.AsyncClient, admin: httpx.AsyncClient, keys: Keys, site: str, rec: Recorder
    ):
        self.reader, self.admin, self.keys, self.site, self.rec = reader, admin, keys, site, rec
        self.rng = random.Random(0)
        self.uploads = 0
        self.jobs: list[str] = []
        self.followers: set[asyncio.Task[None]] = set()

    async def timed(self, route: str, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = await call()
        except httpx.HTTPError as exc:
            self.rec.error(route, type(exc).__name__, repr(exc))
            return None
        if response.status_code >= 300:
            self.rec.error(route, f"HTTP {response.status_code}", response.text)
            return None
        self.rec.ok(route, time.perf_counter() - start)
        return response

    async def search(self) -> None:
        body = {"query": self.rng.choice(SEARCHES), "k": 4}
        await self.timed("POST /v1/search", lambda: self.reader.post("/v1/search", json=body))

    async def query(self) -> None:
        body = {"question": self.rng.choice(QUESTIONS)}
        await self.timed("POST /v1/query", lambda: self.reader.post("/v1/query", json=body))

    async def conversation(self) -> None:
        path = f"/v1/conversations/{self.keys.conversation}"
        await self.timed("GET /v1/conversations/{id}", lambda: self.reader.get(path))

    async def conversations(self) -> None:
        await self.timed("GET /v1/conversations", lambda: self.reader.get("/v1/conversations"))

    async def upload(self) -> None:
        self.uploads += 1
        name = f"note-{self.uploads % UPLOAD_NAMES}.md"
        text = (
            f"# Note {self.uploads}\n\nWidget batch {self.uploads} shipped with {self.uploads % 97} parts.\n"
        )
        path = f"/v1/corpora/{self.keys.soak_corpus}/documents"
        files = {"files": (name, text.encode(), "text/markdown")}
        response = await self.timed(
            "POST /v1/corpora/{id}/documents", lambda: self.admin.post(path, files=files)
        )
        self._follow(response)

    async def crawl(self) -> None:
        path = f"/v1/corpora/{self.keys.soak_corpus}/crawls"
        body = {"urls": [self.site], "max_pages": SITE_PAGES + 1, "allow_hosts": ["127.0.0.1"]}
        response = await self.timed("POST /v1/corpora/{id}/crawls", lambda: self.admin.post(path, json=body))
        self._follow(response)

    async def job(self) -> None:
        if self.jobs:
            path = f"/v1/jobs/{self.jobs[-1]}"
            await self.timed("GET /v1/jobs/{id}", lambda: self.admin.get(path))

    def _follow(self, accepted: httpx.Response | None) -> None:
        if accepted is None:
            return
        job_id = accepted.json()["id"]
        self.jobs = [*self.jobs[-9:], job_id]
        task = asyncio.create_task(self._job_end(job_id, accepted.json()["kind"]))
        self.followers.add(task)
        task.add_done_callback(self.followers.discard)

    async def _job_end(self, job_id: str, kind: str) -> None:
        """Poll a job (every 2 s, at most 5 minutes) until its state is final; not succeeded is an error."""
        route = f"job end ({kind})"
        for _ in range(150):
            await asyncio.sleep(2)
            try:
                response = await self.admin.get(f"/v1/jobs/{job_id}")
            except httpx.HTTPError as exc:
                self.rec.error(route, type(exc).__name__, repr(exc))
                return
            if response.status_code == 404:  # pending jobs are known once started; keep polling
                continue
            job = response.json()
            if job["state"] in ("pending", "running"):
                continue
            if job["state"] != "succeeded" or job["documents_failed"]:
                detail = json.dumps(
                    {k: job.get(k) for k in ("state", "documents_failed", "failures", "error")}
                )
                self.rec.error(route, job["state"], detail)
            return
        self.rec.error(route, "not finished after 5 minutes", job_id)


async def run(url: str, pid: int, keys: dict[str, str], site: str, args: argparse.Namespace) -> int:
    rec = Recorder()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with (
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {keys['reader']}"},
            timeout=args.request_timeout_s,
            limits=limits,
        ) as reader,
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=args.request_timeout_s,
            limits=limits,
        ) as admin,
    ):
        corpus = (await admin.post("/v1/corpora", json={"name": "soak"})).raise_for_status().json()["id"]
        conversation = (await reader.post("/v1/conversations", json={"title": "soak"})).raise_for_status()
        conversation_id = conversation.json()["id"]
        # One exchange, so the conversation read returns messages.
        await reader.post("/v1/query", json={"question": QUESTIONS[0], "conversation_id": conversation_id})
        traffic = Traffic(
            reader, admin, Keys(keys["reader"], keys["admin"], corpus, conversation_id), site, rec
        )
        operations = {name: getattr(traffic, name) for name, _ in MIX}
        names, weights = [n for n, _ in MIX], [w for _, w in MIX]
        rss: list[tuple[float, int]] = []
        in_flight = asyncio.Semaphore(args.concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def one(name: str) -> None:
            try:
                await operations[name]()
            finally:
                in_flight.release()

        started = time.monotonic()
        warm_until = started + args.warmup_s
        stop_at = warm_until + args.minutes * 60
        next_rss = warm_until
        total = int((args.warmup_s + args.minutes * 60) * args.rate)
        for number in range(total):
            await asyncio.sleep(max(0.0, started + number / args.rate - time.monotonic()))
            now = time.monotonic()
            if now >= stop_at:
                break
            if not rec.measuring and now >= warm_until:
                rec.measuring = True
            if rec.measuring and now >= next_rss:
                rss.append((now - warm_until, rss_kb(pid)))
                next_rss += args.rss_every_s
            if in_flight.locked():
                rec.skipped += 1
                continue
            await in_flight.acquire()
            rec.sent += 1
            task = asyncio.create_task(one(traffic.rng.choices(names, weights)[0]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        rss.append((time.monotonic() - warm_until, rss_kb(pid)))
        await asyncio.gather(*tasks)
        await asyncio.gather(*traffic.followers)
        elapsed = time.monotonic() - started
    return report(rec, rss, elapsed, args)


def report(rec: Recorder, rss: list[tuple[float, int]], elapsed: float, args: argparse.Namespace) -> int:
    errors = sum(rec.errors.values())
    print(
        f"\n{args.minutes:g} min measured after {args.warmup_s:g} s warm-up at {args.rate:g} requests/s "
        f"({elapsed:.0f} s in all): {rec.sent} requests sent, {rec.skipped} skipped "
        f"({args.concurrency} in flight)"
    )
    print(f"{'route':34} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    for route in sorted(rec.latencies):
        lat = rec.latencies[route]
        print(
            f"{route:34} {len(lat):6d} " + " ".join(f"{percentile(lat, p):9.1f}" for p in (0.5, 0.95, 0.99))
        )
    print(f"errors: {errors}")
    for (route, what), count in sorted(rec.errors.items()):
        print(f"  {route}: {what} x{count}")
    for line in rec.samples:
        print(f"  sample: {line}")
    series = " ".join(f"{r / 1024:.0f}" for _, r in rss)
    print(f"server RSS (MiB) every ~{args.rss_every_s:g} s: {series}")
    first = [r for t, r in rss if t < 60]
    last = [r for t, r in rss if t >= rss[-1][0] - 60]
    slope = slope_pct_per_10_min(rss) if len(rss) > 1 else 0.0
    change = (sum(last) / len(last) / (sum(first) / len(first)) - 1) * 100
    first_mib, last_mib = sum(first) / len(first) / 1024, sum(last) / len(last) / 1024
    peak_mib = max(r for _, r in rss) / 1024
    print(
        f"RSS first minute {first_mib:.0f} MiB, last minute {last_mib:.0f} MiB ({change:+.2f}%); "
        f"least-squares slope {slope:+.2f}% per 10 minutes; peak {peak_mib:.0f} MiB"
    )
    flat = abs(slope) <= FLAT_WITHIN_PCT and abs(change) <= FLAT_WITHIN_PCT
    print(f"verdict: {'PASS' if not errors and flat else 'FAIL'} (0 errors, RSS within {FLAT_WITHIN_PCT:g}%)")
    return 0 if not errors and flat else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="measured minutes (default 10)")
    parser.add_argument("--rate", type=float, default=2.0, help="requests started per second (default 2)")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="seconds before measuring (default 60)")
    parser.add_argument("--concurrency", type=int, default=16, help="most requests in flight (default 16)")
    parser.add_argument("--rss-every-s", type=float, default=5.0, help="RSS sampling period (default 5)")
    parser.add_argument("--request-timeout-s", type=float, default=120.0)
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.concurrency < 1:
        parser.error("--minutes and --rate must be positive, --concurrency at least 1")
    with tempfile.TemporaryDirectory(prefix="lore-soak-site-") as site_dir:
        write_site(Path(site_dir))
        with static_server(Path(site_dir)) as site, local_server() as (url, pid, keys):
            code = asyncio.run(run(url, pid, keys, site + "index.html", args))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
