"""The application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import NoReturn

from fastapi import FastAPI

from api.auth.oidc import install_oidc
from api.auth.routes import install_auth
from api.background import BackgroundWork
from api.batches import routes as batch_routes
from api.batches.runner import BatchRunner
from api.conversations import routes as conversation_routes
from api.corpora import routes as corpora_routes
from api.errors import install_error_handlers
from api.evals import routes as eval_routes
from api.evals import service as eval_service
from api.inputs import InputGuard
from api.job_runner import JobRunner
from api.mcp.http import install_mcp, mcp_lifespan
from api.openai_compat import routes as openai_routes
from api.ops.install import closing_ops, install_ops
from api.ops.readiness import Readiness, check_readiness
from api.routes import documents, health, jobs, query, search, ws
from api.web import install_web
from core.errors import LoreError
from core.resources import open_resources
from core.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None,
    *,
    on_ready: Callable[[Readiness], None] | None = None,
    on_failure: Callable[[LoreError], NoReturn] | None = None,
) -> FastAPI:
    """A Lore API app; its lifespan opens the resources (and loads the models) once.

    ``on_ready`` runs once the resources are open, just before the server accepts requests, with
    what ``/ready`` would say then; ``on_failure`` instead, with the error, when they cannot be
    opened (else the error is raised).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            try:
                resources = await stack.enter_async_context(
                    open_resources(settings, on_cache_error=app.state.metrics.count_cache_error)
                )
            except LoreError as exc:
                if on_failure is None:
                    raise
                on_failure(exc)
            await stack.enter_async_context(closing_ops(app))
            await stack.enter_async_context(mcp_lifespan(app, settings))
            app.state.resources = resources
            app.state.background = BackgroundWork()
            app.state.jobs = JobRunner(resources.sessions)
            app.state.eval_runs = eval_service.InFlight()
            # Batches a stop left unfinished go on where they were.
            app.state.batches = BatchRunner(resources, lambda: getattr(app.state, "rate_limiter", None))
            await app.state.batches.resume_unfinished()
            if on_ready is not None:
                on_ready(await check_readiness(resources, app.state.rate_limiter))
            yield
            # Running ingestion jobs stop and are recorded interrupted, and saves spawned by
            # streams finish, before the database closes.
            await app.state.jobs.close()
            await app.state.batches.close()
            await app.state.eval_runs.interrupt_all(resources)
            await app.state.background.drain()

    app = FastAPI(
        title="Lore",
        summary="Grounded, cited, streamed answers over your documents.",
        version="0.1.0",
        lifespan=lifespan,
        # Every route's inputs are checked once, first: unstorable text is a 422, a wrong body type a 415.
        dependencies=[InputGuard],
    )
    install_error_handlers(app)
    install_auth(app, settings)
    install_oidc(app, settings)
    install_ops(app, settings)
    app.include_router(health.router)
    app.include_router(query.router)
    app.include_router(search.router)
    app.include_router(ws.router)
    app.include_router(corpora_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(jobs.router)
    app.include_router(documents.router)
    app.include_router(eval_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(batch_routes.router)
    install_mcp(app)
    install_web(app)
    return app
