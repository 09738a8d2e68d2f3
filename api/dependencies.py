"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.background import BackgroundWork
from api.ops.metrics import Metrics
from core.components.ratelimit import RateLimiter
from core.resources import Resources
from core.settings import Settings


def get_resources(connection: HTTPConnection) -> Resources:
    """The resources the lifespan opened for this app (HTTP requests and WebSockets alike)."""
    resources: Resources = connection.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_background(connection: HTTPConnection) -> BackgroundWork:
    """The app's background work registry (saves that must not delay responses)."""
    background: BackgroundWork = connection.app.state.background
    return background


BackgroundDep = Annotated[BackgroundWork, Depends(get_background)]


def get_app_settings(connection: HTTPConnection) -> Settings:
    """The settings this app was built with."""
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_rate_limiter(connection: HTTPConnection) -> RateLimiter:
    """The app's rate limiter (made by ``install_ops``)."""
    limiter: RateLimiter = connection.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def get_metrics(connection: HTTPConnection) -> Metrics:
    """The app's Prometheus metrics (made by ``install_ops``)."""
    metrics: Metrics = connection.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
