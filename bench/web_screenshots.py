"""Screenshots of every screen of the web app, at desktop (1280x800) and phone (390x844) widths.

Signs in as an admin and visits: login, Ask (an answer with its sources open), the document viewer
(text and PDF), each admin screen, the evals list, a run and its report, a comparison, and
Feedback. Saves SCREEN-WIDTH.png (e.g. ask-1280.png) into the folder given (default
/tmp/lore-screens) and prints their paths. Images are for looking at, never for the repository.

    python bench/web_screenshots.py                      # its own `lore serve`, seeded with samples
    python bench/web_screenshots.py /tmp/shots --url http://127.0.0.1:8000 --user admin --password ...

Without --url it starts `lore serve` on a temporary data dir, with a small corpus (a Markdown page
and a PDF), a reader, two eval runs and an answer rated not helpful. With --url the server's own
data is shown; screens that need an answer or runs show whatever is there. Needs Playwright for
Python (`pip install playwright`) and Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.lore_server import lore, serving  # noqa: E402

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage, ViewportSize

CHROMIUM = "/usr/bin/chromium"
WIDTHS: dict[int, ViewportSize] = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}
QUESTION = "How much may employees claim per day for meals while travelling?"
PDF_QUESTION = "How many crates did the Northwind depot ship?"
HANDBOOK = """# Travel policy

Employees may claim up to 45 euros per day for meals while travelling for work.

Receipts for every meal must be uploaded to the expenses portal within 30 days of the trip.
"""
SUITE = {
    "name": "handbook-smoke",
    "corpus": "handbook",
    "mode": "retrieve",
    "k": 2,
    "thresholds": {"hit@2": 0.5},
}
CASES = [
    {"question": "How much may employees claim for meals?", "reference_documents": ["travel.md"]},
    {"question": "How many crates did the Northwind depot ship?", "reference_documents": ["depot.pdf"]},
]


def _pdf() -> bytes | None:
    try:
        from fpdf import FPDF
    except ImportError:
        return None
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.set_title("Depot report")
    for text in (
        "Quarterly report. The Northwind depot shipped eleven thousand crates in the spring quarter.",
        "Staffing. The Harbour office employs forty-two engineers.",
    ):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _wait(client: httpx.Client, path: str, done: Any, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(path).raise_for_status().json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not finish: {body}")
        time.sleep(0.3)


def _seed(url: str, user: str, password: str) -> None:
    """A corpus, a reader, two eval runs and an answer rated not helpful, through the API."""
    token = httpx.post(f"{url}/v1/auth/token", data={"username": user, "password": password}, timeout=30)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        corpus = client.post("/v1/corpora", json={"name": "handbook"}).raise_for_status().json()["id"]
        files = [("files", ("travel.md", HANDBOOK.encode()))]
        if (pdf := _pdf()) is not None:
            files.append(("files", ("depot.pdf", pdf)))
        job = client.post(f"/v1/corpora/{corpus}/documents", files=files).raise_for_status().json()
        _wait(client, f"/v1/jobs/{job['id']}", lambda j: j["state"] not in ("queued", "running"))
        client.post(
            "/v1/users", json={"username": "reader", "password": "reader-password-1", "role": "reader"}
        ).raise_for_status()
        client.post("/v1/grants", json={"username": "reader", "corpus": "handbook"}).raise_for_status()
        runs: list[str] = []
        for limit in (1, 2):
            body = {"suite": SUITE, "cases": CASES, "limit": limit, **({"baseline": runs[0]} if runs else {})}
            run = client.post("/v1/evals/runs", json=body).raise_for_status().json()
            _wait(client, f"/v1/evals/runs/{run['id']}", lambda r: r["state"] not in ("pending", "running"))
            runs.append(run["id"])
        conversation = client.post(
            "/v1/conversations", json={"title": "Receipts", "corpus": "handbook"}
        ).raise_for_status()
        conversation_id = conversation.json()["id"]
        question = {"question": "Where must receipts be uploaded?", "corpus": "handbook"}
        client.post("/v1/query", json=question | {"conversation_id": conversation_id}).raise_for_status()
        messages = client.get(f"/v1/conversations/{conversation_id}").raise_for_status().json()["messages"]
        answer = next(m for m in messages if m["role"] == "assistant")
        client.put(
            f"/v1/conversations/{conversation_id}/messages/{answer['id']}/feedback",
            json={"rating": "down", "comment": "It should name the portal and the 30 day limit."},
        )


@contextmanager
def _own_server(root: Path) -> Iterator[tuple[str, str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env |= {
        "LORE_DATA_DIR": str(root / "lore"),
        "LORE_ANSWER__MODE": "generate",
        "LORE_LLM__MAX_TOKENS": "48",
        "LORE_CACHE__SEMANTIC": "false",
        "LORE_RATE_LIMIT__ENABLED": "false",
    }
    password = "admin-password-1"
    lore(env, "db", "upgrade")
    lore(env, "users", "create", "admin", "--role", "admin", "--password-stdin", stdin=password)
    with serving(env, root / "serve.log") as (url, _):
        _seed(url, "admin", password)
        yield url, "admin", password


async def _shots(url: str, user: str, password: str, out: Path) -> list[Path]:
    from playwright.async_api import Page, async_playwright, expect

    saved: list[Path] = []

    async def shot(page: Page, name: str, width: int, *, full_page: bool = True) -> None:
        path = out / f"{name}-{width}.png"
        if full_page:
            # From the top: a full-page shot of a scrolled page draws the sticky header mid-page.
            await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(path), full_page=full_page)
        saved.append(path)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            print(f"  console error: {message.text}")

    async def settle(page: Page) -> None:
        # A hash route is a same-document navigation (no load state to wait for): wait until no
        # screen shows its loading spinner, then a moment for the last paint.
        await page.wait_for_function("() => !document.querySelector('.loading')", timeout=30_000)
        await page.wait_for_timeout(250)

    async def heading(page: Page, route: str, name: str | re.Pattern[str]) -> None:
        await page.goto(f"{url}/#/{route}")
        await expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
        await settle(page)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        for width, viewport in WIDTHS.items():
            context = await browser.new_context(viewport=viewport)
            context.set_default_timeout(30_000)
            page = await context.new_page()
            page.on("console", console)
            page.on("pageerror", lambda error: print(f"  page error: {error}"))

            await page.goto(f"{url}/#/ask")
            await expect(page.get_by_role("heading", name="Sign in to Lore")).to_be_visible()
            await shot(page, "login", width)
            await page.get_by_label("Username").fill(user)
            await page.get_by_label("Password").fill(password)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Ask", level=1)).to_be_visible()
            await shot(page, "ask-empty", width)
            if width < 760:
                await page.get_by_role("button", name="Menu").click()
                await shot(page, "menu-open", width)
                await page.get_by_role("button", name="Menu").click()

            for question, name in ((QUESTION, "ask"), (PDF_QUESTION, "ask-pdf")):
                # each in a conversation of its own: the small model, given history, repeats itself
                await page.get_by_role("button", name="New conversation").click()
                await page.get_by_role("textbox", name="Question").fill(question)
                await page.get_by_role("button", name="Send").click()
                answers = page.locator('[data-testid="message"][data-role="assistant"]')
                await expect(answers.last).not_to_have_attribute("data-status", "streaming", timeout=120_000)
                await shot(page, name, width)
                citations = page.get_by_test_id("citation")
                citation = (citations.filter(has_text="Page ") if name == "ask-pdf" else citations).first
                if await citation.count():
                    await citation.get_by_role("button", name="Open in document").click()
                    dialog = page.get_by_role("dialog")
                    await expect(dialog.get_by_test_id("highlight").first).to_be_visible()
                    await settle(page)
                    await shot(page, f"viewer-{'pdf' if name == 'ask-pdf' else 'text'}", width)
                    await dialog.get_by_role("button", name="Close").first.click()

            for route, name, title in (
                ("admin/corpora", "corpora", "Corpora"),
                ("admin/documents", "documents", "Documents"),
                ("admin/ingest", "ingest", "Ingest"),
                ("admin/jobs", "jobs", "Jobs"),
                ("admin/users", "users", "Users"),
                ("admin/users/reader", "user", "Users"),
                ("admin/search", "search", "Search tester"),
                ("evals", "evals", "Evaluations"),
                ("feedback", "feedback", "Feedback"),
                ("admin/nowhere", "not-found", "Page not found"),
            ):
                await heading(page, route, title)
                if name == "search":
                    await page.get_by_role("textbox", name="Query").fill("meal allowance")
                    await page.get_by_role("button", name="Search").click()
                    await expect(page.get_by_test_id("search-result").first).to_be_visible()
                await shot(page, name, width)

            await heading(page, "admin/jobs", "Jobs")
            rows = page.get_by_test_id("job-row")
            if await rows.count():
                await rows.first.get_by_role("link").first.click()
                await expect(page.get_by_role("heading", name=re.compile(r"^Job "), level=1)).to_be_visible()
                await settle(page)
                await shot(page, "job", width)

            await heading(page, "evals", "Evaluations")
            runs = page.get_by_test_id("eval-run-row")
            ids = [
                (await link.get_attribute("href") or "").rsplit("/", 1)[-1]
                for link in await runs.locator("a").all()
            ]
            if ids:
                await heading(page, f"evals/{ids[0]}", re.compile(r"^Run "))
                await page.get_by_role("button", name="View report").click()
                report = page.frame_locator('iframe[title="Eval report"]')
                await expect(report.get_by_role("heading", level=1)).to_be_visible()
                await shot(page, "eval-run", width)
                # A full-page capture leaves the sandboxed report frame blank: the frame in view.
                await page.get_by_title("Eval report").scroll_into_view_if_needed()
                await shot(page, "eval-report", width, full_page=False)
            if len(ids) >= 2:
                await heading(page, f"evals/compare?a={ids[1]}&b={ids[0]}", "Compare runs")
                await shot(page, "evals-compare", width)
            await context.close()
        await browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/lore-screens"))
    parser.add_argument("--url", help="a running Lore (else one is started, seeded with samples)")
    parser.add_argument("--user", default="admin", help="an admin's username (with --url)")
    parser.add_argument("--password", help="that admin's password (with --url)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        if not args.password:
            parser.error("--url needs --password")
        saved = asyncio.run(_shots(args.url.rstrip("/"), args.user, args.password, args.out))
    else:
        with tempfile.TemporaryDirectory(prefix="lore-screens-") as tmp, _own_server(Path(tmp)) as server:
            saved = asyncio.run(_shots(*server, args.out))
    for path in saved:
        print(path)
    print(json.dumps({"screenshots": len(saved), "folder": str(args.out)}))


if __name__ == "__main__":
    main()
