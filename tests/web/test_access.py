"""What a reader's browser shows: only the corpora granted, no admin or eval links, and a
not-allowed screen for the routes their role may not open."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import Lore, axe_check, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.models]

ADMIN_LINKS = ("Evals", "Feedback", "Corpora", "Documents", "Ingest", "Jobs", "Users", "Search tester")
FORBIDDEN = (
    "admin/corpora",
    "admin/documents",
    "admin/ingest",
    "admin/jobs",
    "admin/users",
    "admin/users/admin",
    "admin/search",
    "evals",
    "feedback",
)


async def test_a_reader_sees_only_granted_corpora_and_no_admin_screens(page: Page, lore: Lore) -> None:
    # Given a reader granted handbook (not secret), signed in
    await sign_in(page, lore, "reader")

    # then the corpus picker offers only what they may read
    picker = page.get_by_role("combobox", name="Corpus")
    await expect(picker.locator("option")).to_have_text(["All my corpora", "handbook"])
    await expect(page.locator("body")).not_to_contain_text(re.compile("secret", re.IGNORECASE))

    # and the navigation has no admin or eval link
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Ask", exact=True)).to_be_visible()
    for name in ADMIN_LINKS:
        await expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    await axe_check(page, "ask (reader)")

    # and every admin or eval route shows the not-allowed state, never the screen or its data
    for route in FORBIDDEN:
        await page.goto(lore.url(route))
        await expect(page.get_by_role("heading", level=1)).to_have_text("Not available")
        await expect(page.locator("main")).not_to_contain_text(re.compile("secret", re.IGNORECASE))
    await axe_check(page, "not available")


async def test_on_a_phone_the_navigation_opens_from_the_menu_button(page: Page, lore: Lore) -> None:
    # Given an admin on a phone-sized screen
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, lore, "admin")
    menu = page.get_by_role("button", name="Menu")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_role("link", name="Users", exact=True)).to_be_hidden()
    await axe_check(page, "ask (phone)")

    # when they open the menu, its links show; choosing one opens the screen and closes the menu
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await axe_check(page, "menu open (phone)")
    await page.get_by_role("link", name="Users", exact=True).click()
    await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await axe_check(page, "users (phone)")
