"""The HTML report in headless Chromium (Debian's `chromium`): no console errors, plots drawn.

Chromium is driven over the DevTools protocol (aiohttp's WebSocket client): console messages,
uncaught exceptions and failed loads are collected while the page loads.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from evals import reports
from tests.evals.test_gates_and_reports import _record, _run, _suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[int]:
    """A headless Chromium; yields its DevTools port."""
    if CHROMIUM is None:
        # A browser is not one of the services CI must have: .ci/run installs it when it can.
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _page_socket(http: aiohttp.ClientSession, port: int) -> str:
    for _ in range(150):
        try:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [p for p in await response.json() if p["type"] == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("chromium did not start")


async def _load(port: int, page_uri: str, script: str) -> tuple[list[str], Any]:
    """Open ``page_uri``; return the errors logged while it loads and the value of ``script``."""
    errors: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(await _page_socket(http, port), max_msg_size=0) as ws,
    ):
        ids = iter(range(1, 1000))
        pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        loaded = asyncio.Event()

        async def reader() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if "id" in data and data["id"] in pending:
                    pending.pop(data["id"]).set_result(data)
                method = data.get("method")
                params = data.get("params", {})
                if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
                    errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
                elif method == "Runtime.exceptionThrown":
                    errors.append(params["exceptionDetails"].get("text", "exception"))
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    errors.append(params["entry"]["text"])
                elif method == "Page.loadEventFired":
                    loaded.set()

        async def call(method: str, **params: Any) -> dict[str, Any]:
            number = next(ids)
            pending[number] = asyncio.get_running_loop().create_future()
            await ws.send_json({"id": number, "method": method, "params": params})
            return await asyncio.wait_for(pending[number], 30)

        task = asyncio.create_task(reader())
        try:
            for domain in ("Runtime", "Log", "Page"):
                await call(f"{domain}.enable")
            await call("Page.navigate", url=page_uri)
            await asyncio.wait_for(loaded.wait(), 30)
            await asyncio.sleep(0.3)  # late console messages
            value = await call("Runtime.evaluate", expression=script, returnByValue=True)
        finally:
            task.cancel()
    return errors, value["result"]["result"].get("value")


PLOTS = """JSON.stringify(Array.from(document.querySelectorAll('.plots')).map(d => ({
  id: d.id,
  svgs: d.querySelectorAll('svg').length,
  drawn: Array.from(d.querySelectorAll('svg')).every(s => s.getBoundingClientRect().width > 0),
  bars: d.querySelectorAll('rect').length,
})))"""


async def test_the_harness_sees_console_errors(browser: int, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('broken')</script></body></html>")
    errors, _ = await _load(browser, page.as_uri(), "1")
    assert errors == ["broken"]


async def test_run_and_comparison_reports_render_without_console_errors(browser: int, tmp_path: Path) -> None:
    suite = _suite(thresholds={"hit@4": 0.5}, regression={"max_drop": {"hit@4": 0.0}})
    a = _run([_record("1", "stays", 1.0, 0.5), _record("2", "drops", 1.0, 0.9, ms=250)], suite)
    b = _run([_record("1", "stays", 1.0, 0.5), _record("2", "drops", 0.0, 0.2, ms=900)], suite)
    run_page = reports.write_run_reports(b, tmp_path / "run")["html"]
    errors, plots = await _load(browser, run_page.as_uri(), PLOTS)
    assert errors == []
    shown = {p["id"]: p for p in json.loads(plots)}
    assert set(shown) == {"distributions", "tags", "latency"}
    assert all(p["svgs"] >= 1 and p["drawn"] and p["bars"] >= 1 for p in shown.values())

    from evals.compare import compare

    compare_page = tmp_path / "comparison.html"
    compare_page.write_text(reports.compare_html(compare(a, b)))
    errors, plots = await _load(browser, compare_page.as_uri(), PLOTS)
    assert errors == []
    [deltas] = json.loads(plots)
    assert deltas["id"] == "deltas" and deltas["drawn"] and deltas["bars"] >= 1
