"""The web app: the built bundle (``web/`` built into ``api/static/app``) served at ``/``.

The bundle is committed, so a fresh clone serves it without Node.js (docs/architecture.md, "The web
app"). Every response of the app's shell and assets carries a strict Content-Security-Policy: no
inline script or style, nothing from another origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUNDLE = Path(__file__).resolve().parent / "static" / "app"

# 'self' only: the bundle loads its chunks, the pdf.js worker and its stylesheet from Lore, talks to
# /v1 on the same origin, and shows authenticated HTML (reports, originals) from blob: URLs in
# sandboxed frames.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lore</title></head>
<body><h1>Lore's web app is not built</h1><p>This checkout has no bundle under api/static/app.
Build it with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, or use the API at
<a href="/docs">/docs</a>.</p></body></html>"""


class _Assets(StaticFiles):
    """Hashed assets: cached for a year (their names change with their content), CSP on each."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_web(app: FastAPI, bundle: Path = BUNDLE) -> None:
    """Serve the web app's shell at ``/`` and its assets under ``/assets``."""

    async def shell(request: Request) -> Response:
        index = bundle / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503, headers=SECURITY_HEADERS)
        # The shell names the current hashed assets: never cached, so a new release is picked up.
        return FileResponse(index, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    app.add_api_route("/", shell, methods=["GET", "HEAD"], include_in_schema=False)
    files = {name: bundle / name for name in ("favicon.svg", "favicon.ico", "robots.txt")}
    if not files["favicon.ico"].is_file():
        # Browsers ask for /favicon.ico on pages that name no icon (a report, an original in a tab).
        files["favicon.ico"] = files["favicon.svg"]
    for name, path in files.items():
        if path.is_file():
            app.add_api_route(
                f"/{name}", _static_file(path), methods=["GET", "HEAD"], include_in_schema=False
            )
    if (bundle / "assets").is_dir():
        app.mount("/assets", _Assets(directory=bundle / "assets"), name="web-assets")


def _static_file(path: Path) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        return FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"})

    return serve
