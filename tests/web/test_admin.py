"""The admin's screens in the browser: uploads with a corrupt file, a crawl of a loopback site, a
re-index, and a new user with an API key and a grant that work against the API."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import Lore, axe_check, create_corpus, make_pdf, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.models]

# A job's live status reads "STATE: DONE of TOTAL documents" once it is final.
FINAL = re.compile(r"^(succeeded|failed|cancelled|interrupted): \d+ of \d+ documents?$")


async def _job_finished(page: Page, timeout_ms: float = 90_000) -> str:
    """Wait for the Job progress region on the page to show a final state: its status text."""
    progress = page.get_by_role("region", name="Job progress").last
    status = progress.get_by_role("status")
    await expect(status).to_have_text(FINAL, timeout=timeout_ms)
    return (await status.text_content() or "").strip()


async def test_an_upload_of_three_files_indexes_two_and_fails_the_corrupt_one_with_its_reason(
    page: Page, lore: Lore, tmp_path: Path
) -> None:
    # Given three files, one of them a PDF that is not one
    files = {
        "parking.md": b"# Parking\n\nVisitors park in the east car park, level two.\n",
        "canteen.pdf": make_pdf("The canteen opens at half past eleven."),
        "broken.pdf": b"%PDF-1.7 this is not a pdf at all \x00\xff\xfe garbage",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    # (a corpus of their own: the handbook's answers stay those the other tests expect)
    with lore.client() as client:
        create_corpus(client, "uploads")
    await sign_in(page, lore, "admin", route="admin/ingest")
    await expect(page.get_by_role("heading", name="Ingest", level=1)).to_be_visible()
    await axe_check(page, "ingest")

    # when the admin chooses them (the file input; dropping them calls the same handler) and uploads
    await page.get_by_role("combobox", name="Corpus").select_option(label="uploads")
    uploads = page.get_by_role("region", name="Upload files")
    await uploads.get_by_label("Choose files").set_input_files([tmp_path / name for name in files])
    await uploads.get_by_role("button", name="Upload").click()

    # then the job ends with two documents indexed and one failed
    for name in files:
        await expect(uploads.get_by_role("progressbar", name=f"Uploading {name}")).to_be_visible()
    final = await _job_finished(page)
    assert final.endswith("3 of 3 documents"), final
    counts = uploads.get_by_role("region", name="Job progress")
    await expect(counts).to_contain_text("2 new")
    await expect(counts).to_contain_text("1 failed")
    await axe_check(page, "ingest (upload finished)")

    # and the job's page shows the corrupt file with the reason it failed
    await counts.get_by_role("link", name="Open job").click()
    await expect(page.get_by_role("heading", name=re.compile(r"^Job \w{8}$"), level=1)).to_be_visible()
    failed = page.get_by_test_id("job-document").filter(has_text="broken.pdf")
    await expect(failed).to_contain_text("failed")
    reason = (await failed.locator("td").last.text_content() or "").strip()
    assert reason, "the failed document shows no reason"
    for name in ("parking.md", "canteen.pdf"):
        await expect(page.get_by_test_id("job-document").filter(has_text=name)).to_contain_text("new")
    # An upload's files are not kept, so its failures are uploaded again, not retried (the API's 409).
    await expect(page.get_by_text("upload the failed ones again")).to_be_visible()
    await expect(page.get_by_role("button", name="Retry failed documents")).to_have_count(0)
    await axe_check(page, "job detail")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A three-page site on a loopback port, its pages linked from the first: its start URL."""
    root = tmp_path / "site"
    root.mkdir()
    pages = {
        "index.html": "<h1>Garden club</h1><p>The garden club meets on Tuesdays.</p>"
        '<a href="roses.html">Roses</a> <a href="tools.html">Tools</a>',
        "roses.html": "<h1>Roses</h1><p>Prune the roses in late February.</p>",
        "tools.html": "<h1>Tools</h1><p>The shed key hangs by the kitchen door.</p>",
    }
    for name, body in pages.items():
        (root / name).write_text(f"<html><head><title>{name}</title></head><body>{body}</body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_crawl_of_a_loopback_site_indexes_its_pages(page: Page, lore: Lore, site: str) -> None:
    # Given a corpus for the site
    with lore.client() as client:
        create_corpus(client, "garden")
    await sign_in(page, lore, "admin", route="admin/ingest")
    await page.get_by_role("combobox", name="Corpus").select_option(label="garden")

    # when the admin crawls it, allowing the loopback host
    crawl = page.get_by_role("region", name="Crawl a web site")
    await crawl.get_by_label("Start URLs (one per line)").fill(site)
    await crawl.get_by_label("Max pages").fill("5")
    await crawl.get_by_label("Allowed hosts (one per line)").fill("127.0.0.1")
    await crawl.get_by_role("button", name="Start crawl").click()

    # then the job succeeds with the three pages indexed
    final = await _job_finished(page)
    assert final == "succeeded: 3 of 3 documents", final
    await expect(crawl.get_by_role("region", name="Job progress")).to_contain_text("3 new")
    await axe_check(page, "ingest (crawl finished)")
    with lore.client() as client:
        [garden] = [c for c in client.get("/v1/corpora").json() if c["name"] == "garden"]
    assert garden["documents"] == 3


async def test_a_corpus_is_reindexed_with_another_chunk_size(page: Page, lore: Lore) -> None:
    await sign_in(page, lore, "admin", route="admin/corpora")
    await expect(page.get_by_role("heading", name="Corpora", level=1)).to_be_visible()
    table = page.get_by_role("table", name="Corpora")
    row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="secret"))
    version = int((await row.locator("td").nth(1).text_content() or "").strip())
    await axe_check(page, "corpora")

    # When the admin re-indexes corpus secret with smaller chunks
    await page.get_by_role("button", name="Re-index secret").click()
    dialog = page.get_by_role("dialog", name="Re-index secret")
    await dialog.get_by_role("spinbutton", name="Chunk tokens (optional)").fill("64")
    await dialog.get_by_role("spinbutton", name="Chunk overlap tokens (optional)").fill("8")
    await axe_check(page, "re-index dialog")
    await dialog.get_by_role("button", name="Start re-index").click()

    # then the job completes inside the dialog, and the corpus moves to a new version
    status = dialog.get_by_role("region", name="Job progress").get_by_role("status")
    await expect(status).to_have_text(re.compile(r"^succeeded: "), timeout=90_000)
    await dialog.get_by_role("button", name="Close").first.click()
    await expect(dialog).to_be_hidden()
    await expect(row.locator("td").nth(1)).not_to_have_text(str(version))


async def test_an_admin_creates_a_user_an_api_key_shown_once_and_a_grant(page: Page, lore: Lore) -> None:
    await sign_in(page, lore, "admin", route="admin/users")
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    await axe_check(page, "users")

    # When the admin creates a reader
    new = page.get_by_role("region", name="New user")
    await new.get_by_role("textbox", name="Username").fill("newbie")
    await new.get_by_label("Password").fill("newbie-password-1")
    await new.get_by_role("combobox", name="Role").select_option("reader")
    await new.get_by_role("button", name="Create user").click()
    await page.get_by_role("table", name="Users").get_by_role("link", name="newbie", exact=True).click()
    await expect(page).to_have_url(re.compile(r"#/admin/users/newbie$"))
    user = page.get_by_role("region", name="User newbie")
    await expect(user).to_be_visible()

    # and an API key for them
    await user.get_by_role("textbox", name="Key name").fill("laptop")
    await user.get_by_role("button", name="Create key").click()
    shown = page.get_by_role("alert").filter(has_text="This key is shown only once")
    key = await shown.get_by_role("textbox", name="New API key").input_value()
    assert key, "no key was shown"
    await axe_check(page, "user (new key shown)")
    await shown.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("textbox", name="New API key")).to_have_count(0)
    await expect(user.get_by_role("table", name="API keys")).to_contain_text("laptop")
    assert key not in (await page.content())

    # and grants them the handbook
    await user.get_by_role("combobox", name="Corpus to grant").select_option("handbook")
    await user.get_by_role("button", name="Grant access").click()
    grants = user.get_by_role("list", name="Corpus grants")
    await expect(grants.get_by_role("button", name="Remove grant handbook")).to_be_visible()
    await axe_check(page, "user (granted)")

    # then the key speaks for the new reader, who may read the handbook and nothing else
    async with httpx.AsyncClient(base_url=lore.base, headers={"Authorization": f"Bearer {key}"}) as api:
        me = await api.get("/v1/auth/me")
        assert me.status_code == 200, me.text
        assert (me.json()["username"], me.json()["role"]) == ("newbie", "reader")
        corpora = await api.get("/v1/corpora")
        assert [c["name"] for c in corpora.json()] == ["handbook"]
