"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.background import BackgroundWork
from api.ops.metrics import Metrics
from core.components.ratelimit import RateLimiter
from core.resources import Resources
from core.settings import Settings

T = TypeVar("T")


def on_loop(getter: Callable[[HTTPConnection], T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    """``getter`` as a coroutine dependency: FastAPI runs a plain function dependency in its thread
    pool, a hop per request (about half a millisecond each, more under load) for a getattr."""

    async def dependency(connection: HTTPConnection) -> T:
        return getter(connection)

    return dependency


def get_resources(connection: HTTPConnection) -> Resources:
    """The resources the lifespan opened for this app (HTTP requests and WebSockets alike)."""
    resources: Resources = connection.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(on_loop(get_resources))]


def get_background(connection: HTTPConnection) -> BackgroundWork:
    """The app's background work registry (saves that must not delay responses)."""
    background: BackgroundWork = connection.app.state.background
    return background


BackgroundDep = Annotated[BackgroundWork, Depends(on_loop(get_background))]


def get_app_settings(connection: HTTPConnection) -> Settings:
    """The settings this app was built with."""
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(on_loop(get_app_settings))]


def get_rate_limiter(connection: HTTPConnection) -> RateLimiter:
    """The app's rate limiter (made by ``install_ops``)."""
    limiter: RateLimiter = connection.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(on_loop(get_rate_limiter))]


def get_metrics(connection: HTTPConnection) -> Metrics:
    """The app's Prometheus metrics (made by ``install_ops``)."""
    metrics: Metrics = connection.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(on_loop(get_metrics))]
