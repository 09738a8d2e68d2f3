"""The web app in a real browser: one `lore serve` process with an ingested corpus and three users,
one headless Chromium (Debian's package, driven by Playwright), a fresh browser context per test.

Every page a test opens fails it on any console error, uncaught exception or JavaScript dialog
(an XSS would show as one), and :func:`axe_check` runs axe-core on each screen a journey visits.
The tests skip when Chromium, axe-core (web/node_modules) or Playwright is missing, unless
LORE_TEST_REQUIRE_BROWSER=1, when they fail instead. They need no services (the server runs on
the embedded defaults):

    .venv/bin/python -m pytest tests/web        # or -m browser; about 1.5 min on two cores
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.served import REPO, lore_env, serve_process

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Dialog,
        Locator,
        Page,
        ViewportSize,
    )

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
BUNDLE = REPO / "api" / "static" / "app" / "index.html"

DESKTOP: ViewportSize = {"width": 1280, "height": 800}

PASSWORDS = {
    "admin": "admin-password-1",
    "evaluator": "evaluator-password-1",
    "reader": "reader-password-1",
}

# The handbook page's fact, the question that finds it and words its answer must hold.
HANDBOOK = """# Travel policy

Employees may claim up to 45 euros per day for meals while travelling for work.

Receipts for every meal must be uploaded to the expenses portal within 30 days of the trip.
"""
QUESTION = "What does the travel policy say about meals?"
PDF_FACT = "The Northwind depot shipped eleven thousand crates in the spring quarter."
XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_DOC = f"""# {XSS_TITLE}

The onboarding checklist asks every new starter to enable two-factor authentication on day one.
"""
SECRET = "# Vault\n\nThe Omega gadget is purple and hums at night.\n"


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    if not AXE.is_file():
        return f"needs axe-core at {AXE} (cd web && npm ci)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "needs Playwright for Python (pip install playwright; its bundled browsers are not used)"
    return None


@pytest.fixture(scope="session", autouse=True)
def browser_prerequisites() -> None:
    """Skip (or, with LORE_TEST_REQUIRE_BROWSER=1, fail) every web test when a prerequisite is missing."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("LORE_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def make_pdf(*pages: str) -> bytes:
    """A small PDF with one page of text per argument."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.set_title("Depot report")
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@dataclass
class Lore:
    """The served app: its base URL, an admin's API key, its environment (for `lore` commands on
    the same data) and its log."""

    base: str
    admin_key: str
    env: dict[str, str]
    log: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def url(self, route: str = "") -> str:
        """The app at hash route ``route`` (e.g. "admin/jobs")."""
        return f"{self.base}/#/{route}" if route else f"{self.base}/"


def wait_for_job(client: httpx.Client, job_id: str, *, timeout_s: float = 90) -> dict[str, Any]:
    """The job's detail once its state is final."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.2)


def create_corpus(client: httpx.Client, name: str) -> str:
    """A new corpus: its ID (what the corpus routes' paths take)."""
    response = client.post("/v1/corpora", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def upload(client: httpx.Client, corpus: str, files: dict[str, bytes]) -> dict[str, Any]:
    """Upload ``files`` (name -> bytes) to corpus ID ``corpus`` and wait for the job: its detail."""
    parts = [("files", (name, data)) for name, data in files.items()]
    response = client.post(f"/v1/corpora/{corpus}/documents", files=parts)
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.json()["id"])


async def _create_admin(data_dir: Path) -> str:
    """The admin user (with a password) in a fresh database on ``data_dir``: an API key for it."""
    from api.auth import service as auth
    from core.db import migrate
    from core.db.engine import create_engine, session_factory
    from core.settings import Settings

    settings = Settings(data_dir=data_dir)
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            user = await auth.create_user(
                session, username="admin", password=PASSWORDS["admin"], role="admin"
            )
            key = await auth.create_api_key(
                session, user=user, name="web-tests", prefix=settings.auth.api_key_prefix
            )
            await session.commit()
            return key.plaintext
    finally:
        await engine.dispose()


def served_env(data_dir: Path) -> dict[str, str]:
    """`lore serve`'s settings for the web tests: quick streamed answers from the small packaged
    model, no rate limits (many sign-ins), a crawler without politeness delays."""
    return lore_env(
        data_dir,
        # generate (not extract, the small model's default) so the answer streams sentence by
        # sentence as the model writes; few tokens so it is done within seconds on two cores.
        answer__mode="generate",
        llm__max_tokens="40",
        # the small model's rewrites of follow-ups wander ("Northwind" became "North Atlantic")
        retrieval__followups="off",
        cache__semantic="false",
        rate_limit__enabled="false",
        ingestion__crawl__per_host_delay_s="0",
        ingestion__crawl__retries="0",
    )


@pytest.fixture(scope="session")
async def lore(tmp_path_factory: pytest.TempPathFactory, browser_prerequisites: None) -> AsyncIterator[Lore]:
    """`lore serve` on a free loopback port: corpus handbook (a Markdown page, a two-page PDF and a
    page titled like an XSS), corpus secret, users admin, evaluator (granted handbook) and reader
    (granted handbook only), each with a password from PASSWORDS."""
    assert BUNDLE.is_file(), f"the web app is not built ({BUNDLE}): cd web && npm ci && npm run build"
    root = tmp_path_factory.mktemp("web")
    data_dir = root / "lore"
    files = {
        "travel.md": HANDBOOK.encode(),
        "depot.pdf": make_pdf(
            f"Quarterly report. {PDF_FACT} It was a record for the site.",
            "Staffing. The Harbour office employs forty-two engineers.",
        ),
        "onboarding.md": XSS_DOC.encode(),
    }
    admin_key = await _create_admin(data_dir)
    env = served_env(data_dir)
    log = root / "serve.log"
    with serve_process(env, log) as (_, base):
        served = Lore(base, admin_key, env, log)
        with served.client() as client:
            made = {name: create_corpus(client, name) for name in ("handbook", "secret")}
            job = upload(client, made["handbook"], files)
            assert job["state"] == "succeeded" and job["documents_failed"] == 0, job
            assert upload(client, made["secret"], {"vault.md": SECRET.encode()})["state"] == "succeeded"
            for username in ("evaluator", "reader"):
                created = client.post(
                    "/v1/users",
                    json={"username": username, "password": PASSWORDS[username], "role": username},
                )
                assert created.status_code == 201, created.text
                granted = client.post("/v1/grants", json={"username": username, "corpus": "handbook"})
                assert granted.status_code in (200, 201, 204), granted.text
        yield served


@dataclass
class Watched:
    """What went wrong on a page: console errors, uncaught exceptions, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"console error on {page.url}: {message.text} {message.location}")

        async def dialog(d: Dialog) -> None:
            self.dialogs.append(f"{d.type} dialog on {page.url}: {d.message!r}")
            await d.dismiss()

        page.on("console", console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught on {page.url}: {exc}"))
        page.on("dialog", dialog)


@pytest.fixture(scope="session")
async def browser(browser_prerequisites: None) -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    from playwright.async_api import async_playwright, expect

    # Answers, jobs and runs take seconds on two cores; each wait names its own longer limit.
    expect.set_options(timeout=15_000)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class Session:
    """A fresh browser context: each of its pages (popups too) is watched and has axe loaded."""

    context: BrowserContext
    watched: Watched
    lore: Lore

    async def new_page(self) -> Page:
        return await self.context.new_page()


@pytest.fixture
async def web(browser: Browser, lore: Lore) -> AsyncIterator[Session]:
    """A fresh browser context at desktop size; the test fails on any console error, uncaught
    exception or dialog on any of its pages."""
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    # An init script is injected by the DevTools protocol, so the app's CSP (script-src 'self')
    # does not block it, and axe is at hand on every page and after every reload.
    await context.add_init_script(path=str(AXE))
    context.set_default_timeout(15_000)
    watched = Watched()
    context.on("page", watched.watch)
    session = Session(context, watched, lore)
    try:
        yield session
    finally:
        await context.close()
    assert not watched.dialogs, watched.dialogs
    assert not watched.errors, "\n".join(watched.errors)


@pytest.fixture
async def page(web: Session) -> Page:
    return await web.new_page()


async def sign_in(page: Page, lore: Lore, username: str, route: str = "ask") -> None:
    """Sign in through the login screen as ``username``, landing on hash route ``route``."""
    from playwright.async_api import expect

    await page.goto(lore.url(route))
    await expect(page.get_by_role("heading", name="Sign in to Lore", level=1)).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORDS[username])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("banner")).to_be_visible()
    # attached, not visible: on a phone the navigation (and who is signed in) is behind "Menu"
    await expect(page.get_by_text(f"Signed in as {username}")).to_be_attached()


_AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
}"""


async def axe_check(page: Page, screen: str) -> None:
    """No serious or critical axe-core violation on the screen now shown."""
    violations = await page.evaluate(_AXE_RUN)
    assert not violations, f"axe on {screen}: {json.dumps(violations, indent=1)}"


# Snapshots of the newest answer's status and text at every change of the thread, kept in the page.
_RECORD = """() => {
  window.__answers = [];
  const thread = document.querySelector('[role="log"][aria-label="Messages"]');
  const snap = () => {
    const answers = thread.querySelectorAll('[data-testid="message"][data-role="assistant"]');
    const last = answers[answers.length - 1];
    if (!last) return;
    const text = last.querySelector('[data-testid="answer-text"]');
    window.__answers.push({ count: answers.length, status: last.dataset.status,
                            text: text ? text.textContent : null });
  };
  new MutationObserver(snap).observe(thread, { subtree: true, childList: true, characterData: true,
                                               attributes: true });
}"""


def _normal(text: str | None) -> str:
    return " ".join((text or "").split())


async def ask(page: Page, question: str, *, number: int, streamed: bool = False) -> Locator:
    """Send ``question``, wait for answer ``number`` (1-based) to complete and check it was not
    refused: the answer's message.

    ``streamed``: also check that the answer's text was seen while it was still streaming, as a
    non-empty beginning of the final text (tokens arrive before the answer is done). Only an
    answer whose model writes on after its first sentence can show that: the server sends each
    sentence once verified, and a one-sentence answer's citations and done follow at once.
    """
    from playwright.async_api import expect

    await page.evaluate(_RECORD)
    await page.get_by_role("textbox", name="Question").fill(question)
    await page.get_by_role("button", name="Send").click()
    answer = page.get_by_test_id("message").and_(page.locator('[data-role="assistant"]')).nth(number - 1)
    await expect(answer).to_have_attribute("data-status", "complete", timeout=90_000)
    refusals = answer.get_by_test_id("refusal")
    assert not await refusals.count(), f"refused: {await refusals.text_content()}"
    final = _normal(await answer.get_by_test_id("answer-text").text_content())
    assert final, "the answer is empty"
    if streamed:
        snapshots: list[dict[str, Any]] = await page.evaluate("() => window.__answers")
        shown = [
            _normal(s["text"])
            for s in snapshots
            if s["count"] == number and s["status"] == "streaming" and s["text"] is not None
        ]
        assert any(text and final.startswith(text) for text in shown), (
            f"no text was shown before the answer was done: {snapshots}"
        )
    return answer
