"""The application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import health, query
from core.resources import open_resources
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """A Lore API app; its lifespan opens the resources (and loads the models) once.

    ``on_ready`` runs once the resources are open, just before the server accepts requests.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            if on_ready is not None:
                on_ready()
            yield

    app = FastAPI(
        title="Lore",
        summary="Grounded, cited, streamed answers over your documents.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(query.router)
    return app
