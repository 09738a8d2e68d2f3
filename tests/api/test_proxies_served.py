"""Through a real `lore serve`: who the client is (trusted proxies), login limits, and the start line.

uvicorn would believe X-Forwarded-For from 127.0.0.1 by default, so a caller on the same host could
name a new address each time and never meet the per-address login limit. Lore believes the header
only from ``server.trusted_proxies`` (none by default), and limits each username as well.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.served import free_port, lore_env, served_process

pytestmark = [pytest.mark.models, pytest.mark.slow]

LOGIN_LIMIT = {"rate_limit__login_burst": "3", "rate_limit__login_per_minute": "1"}


def login(base: str, username: str, forwarded_for: str) -> int:
    response = httpx.post(
        f"{base}/v1/auth/token",
        data={"username": username, "password": "guess"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    return response.status_code


def test_untrusted_forwarded_for_does_not_reset_the_login_limit_and_start_says_degraded(
    tmp_path: Path,
) -> None:
    # A cache Redis nobody listens on: Lore starts degraded, and limits fall back to local buckets.
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = lore_env(tmp_path / "lore", cache__redis_url=nowhere, **LOGIN_LIMIT)
    log = tmp_path / "serve.log"
    with served_process(env, log) as base:
        # Each guess claims another address and names another user: only the peer address counts.
        statuses = [login(base, f"user-{n}", f"203.0.113.{n}") for n in range(5)]
        ready = httpx.get(f"{base}/ready", timeout=30)
    assert statuses == [401, 401, 401, 429, 429]
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    text = log.read_text()
    assert "Lore is ready" not in text
    assert "Lore is degraded on http://127.0.0.1:" in text
    assert "cache failed" in text and "rate_limiter failed" in text


def test_behind_a_trusted_proxy_each_client_address_has_its_bucket_and_each_username_too(
    tmp_path: Path,
) -> None:
    env = lore_env(tmp_path / "lore", server__trusted_proxies='["127.0.0.1"]', **LOGIN_LIMIT)
    with served_process(env, tmp_path / "serve.log") as base:
        # many clients behind the proxy, each its own user: none is limited by the others
        spread = [login(base, f"user-{n}", f"203.0.113.{n}") for n in range(5)]
        # many clients guessing one username: the username's bucket stops them
        one_user = [login(base, "alice", f"198.51.100.{n}") for n in range(5)]
        ready_line = (tmp_path / "serve.log").read_text()
    assert spread == [401] * 5
    assert one_user == [401, 401, 401, 429, 429]
    assert "Lore is ready on http://127.0.0.1:" in ready_line
