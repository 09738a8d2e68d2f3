"""Liveness."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from api.schemas import Health

router = APIRouter(tags=["health"])


def _version() -> str:
    try:
        return version("lore")
    except PackageNotFoundError:
        return "dev"


@router.get("/health", response_model=Health, summary="Liveness: the process is up")
async def health() -> Health:
    return Health(status="ok", version=_version())
