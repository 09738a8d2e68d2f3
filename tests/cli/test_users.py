"""`lore users` and `lore keys` as a user runs them: separate processes on a fresh data dir."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from api.auth import service
from core.db.engine import create_engine, session_factory
from core.db.models import ApiKeyRow
from core.settings import Settings


def lore(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # Only this test's settings: a developer's or CI's LORE_* variables must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")} | {
        "LORE_DATA_DIR": str(data_dir)
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        timeout=120,
    )


async def test_create_user_from_stdin_then_a_key_printed_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "lore"
    created = lore(
        data_dir, "users", "create", "ops", "--role", "admin", "--password-stdin", stdin="s3cret pass\n"
    )
    assert created.returncode == 0, created.stderr
    key_run = lore(data_dir, "keys", "create", "--user", "ops", "--name", "deploy", "--role", "reader")
    assert key_run.returncode == 0, key_run.stderr
    key = key_run.stdout.strip().splitlines()[-1]
    assert key.startswith("lore_") and len(key) == len("lore_") + 43
    assert key not in key_run.stderr

    engine = create_engine(Settings(data_dir=data_dir))
    try:
        async with session_factory(engine)() as session:
            user = await service.authenticate(session, username="ops", password="s3cret pass")
            row = await session.scalar(select(ApiKeyRow))
            caller = await service.verify_api_key(session, key=key)
    finally:
        await engine.dispose()
    assert user.role == "admin"
    assert row is not None and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (caller.username, caller.role) == ("ops", "reader")

    again = lore(data_dir, "users", "create", "ops", "--no-password")
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
