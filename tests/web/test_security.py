"""The web app's security over HTTP against the served process: a strict CSP on the shell, the
browser session's cookies (refresh token HttpOnly, CSRF-checked), and no token in page storage."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import PASSWORDS, Lore, axe_check

pytestmark = [pytest.mark.browser, pytest.mark.models]


def _directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name.lower()] = values
    return out


async def test_the_shell_and_its_assets_carry_a_csp_without_inline_script(lore: Lore) -> None:
    async with httpx.AsyncClient(base_url=lore.base) as http:
        shell = await http.get("/")
        assert shell.status_code == 200 and "text/html" in shell.headers["content-type"]
        script = re.search(r'<script[^>]+src="(/assets/[^"]+\.js)"', shell.text)
        assert script, shell.text
        asset = await http.get(script[1])
    for response in (shell, asset):
        policy = _directives(response.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"], policy
        assert "'unsafe-inline'" not in policy.get("style-src", []), policy
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    # the shell itself holds no inline script for the policy to forbid
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", shell.text), shell.text


async def test_the_session_cookie_is_http_only_strict_and_its_refresh_needs_the_csrf_token(
    lore: Lore,
) -> None:
    async with httpx.AsyncClient(base_url=lore.base) as http:
        # When a user signs in with the browser session route
        login = await http.post(
            "/v1/auth/session", json={"username": "reader", "password": PASSWORDS["reader"]}
        )
        assert login.status_code == 200, login.text
        assert login.json()["token_type"] == "bearer" and login.json()["access_token"]
        cookies = SimpleCookie()
        for header in login.headers.get_list("set-cookie"):
            cookies.load(header)

        # then the refresh token is in an HttpOnly, SameSite=Strict cookie for the refresh path only
        refresh = cookies["lore_refresh"]
        assert refresh["httponly"] is True
        assert refresh["samesite"].lower() == "strict"
        assert refresh["path"] == "/v1/auth/session/refresh"
        # and the CSRF token in a cookie the page can read
        csrf = cookies["lore_csrf"]
        assert not csrf["httponly"] and csrf["samesite"].lower() == "strict" and csrf["path"] == "/"

    # and a refresh without the CSRF header, or with a wrong one, is refused
    cookie = {"Cookie": f"lore_refresh={refresh.value}; lore_csrf={csrf.value}"}
    path = "/v1/auth/session/refresh"
    async with httpx.AsyncClient(base_url=lore.base, headers=cookie) as browser:
        bare = await browser.post(path)
        wrong = await browser.post(path, headers={"X-CSRF-Token": csrf.value + "x"})
        assert bare.status_code in (401, 403), bare.text
        assert wrong.status_code in (401, 403), wrong.text
        assert "access_token" not in bare.text + wrong.text
        # while the same cookies with the right header get a new access token
        right = await browser.post(path, headers={"X-CSRF-Token": csrf.value})
        assert right.status_code == 200, right.text
        assert right.json()["access_token"]


async def test_the_access_token_is_never_in_page_storage_or_readable_cookies(page: Page, lore: Lore) -> None:
    # Given a user who signs in through the login screen
    await page.goto(lore.url("ask"))
    await axe_check(page, "login")
    await page.get_by_label("Username").fill("reader")
    await page.get_by_label("Password").fill(PASSWORDS["reader"])
    async with page.expect_response(lambda r: r.url.endswith("/v1/auth/session")) as signed:
        await page.get_by_role("button", name="Sign in").click()
    token = (await (await signed.value).json())["access_token"]
    await expect(page.get_by_role("navigation", name="Main")).to_be_visible()

    # then neither the token nor the refresh cookie is anywhere the page's scripts can read
    stored = await page.evaluate(
        """() => JSON.stringify({
            local: Object.entries(localStorage), session: Object.entries(sessionStorage),
            cookie: document.cookie })"""
    )
    assert token not in stored, stored
    assert "lore_refresh" not in stored, stored

    # and a reload restores the session from the cookie alone
    await page.reload()
    await expect(page.get_by_text("Signed in as reader")).to_be_visible()
    stored = await page.evaluate("() => JSON.stringify([localStorage, sessionStorage, document.cookie])")
    assert token not in stored
