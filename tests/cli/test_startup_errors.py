"""A command that cannot start says so in one line naming the setting, and exits 2 (no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.served import REPO, free_port, lore_env


def lore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_database_on_a_closed_port_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/lore"
    for args in (("users", "list"), ("jobs", "list")):
        done = lore(lore_env(tmp_path / "lore", database__url=url), *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("error: cannot reach the database (LORE_DATABASE__URL=")
        assert "fix the setting" in done.stderr


def test_an_unmigrated_database_says_run_lore_db_upgrade(tmp_path: Path, fresh_postgres_url: str) -> None:
    done = lore(lore_env(tmp_path / "lore", database__url=fresh_postgres_url), "users", "list")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "run `lore db upgrade` first (LORE_DATABASE__URL=" in done.stderr


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
def test_ingest_fails_a_missing_path_alone_and_exits_1(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha widgets are blue.\n")
    missing = tmp_path / "nowhere.md"

    done = lore(lore_env(tmp_path / "lore"), "ingest", str(docs / "a.md"), str(missing), "--json")

    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["documents_new"], summary["documents_failed"]) == (1, 1)
    assert summary["failures"] == [
        {"source": str(missing.resolve()), "error": f"no such file or directory: {missing}"}
    ]


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
def test_a_queue_redis_on_a_closed_port_stops_serve_and_worker_with_one_error_line(tmp_path: Path) -> None:
    env = lore_env(tmp_path / "lore", queue__redis_url=f"redis://127.0.0.1:{free_port()}/0")
    for args in (("serve", "--port", str(free_port())), ("worker",)):
        done = lore(env, *args)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "Application startup failed" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: cannot reach the job queue's Redis at 127.0.0.1:"), done.stderr
        assert "(LORE_QUEUE__REDIS_URL)" in last and "unset LORE_QUEUE__REDIS_URL" in last
