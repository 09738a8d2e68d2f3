"""Asking in the browser: the answer streams, cites its sources, opens them highlighted in their
documents, and the conversation is there again after a reload; server text renders as text."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import QUESTION, XSS_TITLE, Lore, Session, ask, axe_check, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.models]

PDF_QUESTION = "How many crates did the Northwind depot ship?"


async def test_an_answer_streams_cites_opens_its_sources_and_survives_a_reload(
    page: Page, lore: Lore
) -> None:
    # Given a reader signed in on Ask
    await sign_in(page, lore, "reader")
    await expect(page.get_by_role("heading", name="Ask", level=1)).to_be_visible()
    await axe_check(page, "ask (empty)")

    # when they ask a handbook question
    await page.get_by_role("combobox", name="Corpus").select_option(label="handbook")
    answer = await ask(page, QUESTION, number=1, streamed=True)

    # then the streamed answer cites the travel policy in the Sources panel
    await expect(answer.get_by_test_id("refusal")).to_have_count(0)
    sources = page.get_by_role("complementary", name="Sources")
    travel = sources.get_by_test_id("citation").filter(has_text="Travel policy")
    await expect(travel.first).to_be_visible()
    await expect(travel.first.locator("blockquote")).to_contain_text("45 euros")
    await expect(answer.get_by_test_id("citation-ref").first).to_be_visible()
    await axe_check(page, "ask (answer with sources)")

    # and the citation opens in its document with the passage marked
    await travel.first.get_by_role("button", name="Open in document").click()
    viewer = page.get_by_role("dialog", name="Travel policy")
    await expect(viewer).to_be_visible()
    await expect(viewer.locator('mark[data-testid="highlight"]').first).to_contain_text("45 euros")
    await expect(viewer.get_by_text("The original document is not available")).to_have_count(0)
    await axe_check(page, "document viewer (text)")

    # and its original opens in a new tab by a ticket (a tab sends no bearer header)
    async with page.context.expect_page() as opening:
        await viewer.get_by_role("button", name="Open original").click()
    original = await opening.value
    await original.wait_for_load_state()
    assert re.search(r"/v1/documents/[^/?]+/file\?(.+&)?ticket=", original.url), original.url
    await expect(original.locator("body")).to_contain_text("45 euros per day")
    await original.close()
    await page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()

    # When they reload the page
    opened = page.url
    assert re.search(r"#/ask/[^/]+$", opened), opened
    await page.reload()

    # then they are still signed in, and the conversation is listed, open, with its exchange
    conversations = page.get_by_role("region", name="Conversations")
    listed = conversations.get_by_role("link", name=QUESTION)
    await expect(listed).to_have_attribute("aria-current", "page")
    messages = page.get_by_test_id("message")
    await expect(messages).to_have_count(2)
    await expect(messages.nth(0)).to_contain_text(QUESTION)
    await expect(messages.nth(1)).to_have_attribute("data-status", "complete")
    await expect(messages.nth(1)).to_contain_text("45 euros")
    await expect(sources.get_by_test_id("citation").filter(has_text="Travel policy").first).to_be_visible()
    await axe_check(page, "ask (conversation reloaded)")

    # When they start a new conversation about the PDF (the small model, given the first
    # exchange as history, would repeat its answer)
    await conversations.get_by_role("button", name="New conversation").click()
    await expect(messages).to_have_count(0)
    await ask(page, PDF_QUESTION, number=1)
    depot = sources.get_by_test_id("citation").filter(has_text="Page 1")
    await expect(depot.first).to_be_visible()
    await depot.first.get_by_role("button", name="Open in document").click()

    # then pdf.js draws its page with a highlight box over the passage
    viewer = page.get_by_role("dialog", name="Depot report")
    await expect(viewer.get_by_role("img", name="Page 1 of 2")).to_be_visible()
    box = viewer.get_by_test_id("highlight").first
    await expect(box).to_be_visible()
    assert await box.evaluate("e => e.tagName") != "MARK"
    size = await box.bounding_box()
    assert size is not None and size["width"] > 20 and size["height"] > 5, size
    await expect(viewer.get_by_text("The original document is not available")).to_have_count(0)
    await axe_check(page, "document viewer (pdf)")
    await viewer.get_by_role("button", name="Close").click()
    await expect(viewer).to_be_hidden()

    # and both conversations are listed, the new one open
    await expect(conversations.get_by_role("link")).to_have_count(2)
    await conversations.get_by_role("link", name=QUESTION).click()
    await expect(page).to_have_url(opened)
    await expect(messages.nth(0)).to_contain_text(QUESTION)


async def test_a_title_holding_html_is_shown_as_text_and_never_run(web: Session, lore: Lore) -> None:
    page = await web.new_page()
    # Given a document titled like an <img onerror> payload, asked about so that it is cited
    await sign_in(page, lore, "admin")
    await page.get_by_role("combobox", name="Corpus").select_option(label="handbook")
    await ask(page, "What does the onboarding checklist ask every new starter to enable?", number=1)

    # then its title is literal text among the sources
    sources = page.get_by_role("complementary", name="Sources")
    cited = sources.get_by_test_id("citation").filter(has_text=XSS_TITLE).first
    await expect(cited).to_be_visible()
    await axe_check(page, "ask (html title among sources)")
    # and names its document's viewer
    await cited.get_by_role("button", name="Open in document").click()
    viewer = page.get_by_role("dialog", name=XSS_TITLE)
    await expect(viewer.locator('mark[data-testid="highlight"]').first).to_contain_text("two-factor")
    assert await page.locator('img[src="x"]').count() == 0
    await viewer.get_by_role("button", name="Close").click()

    # and in the documents list
    await page.goto(lore.url("admin/documents"))
    await expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
    await page.get_by_role("combobox", name="Corpus").select_option(label="handbook")
    row = page.get_by_test_id("document-row").filter(has_text=XSS_TITLE)
    await expect(row).to_have_count(1)
    await expect(row.get_by_role("button", name=f"Open {XSS_TITLE}")).to_be_visible()
    await axe_check(page, "documents")

    # and nowhere did it become an element (nor did a dialog fire: the fixture fails on one)
    assert await page.locator('img[src="x"]').count() == 0
