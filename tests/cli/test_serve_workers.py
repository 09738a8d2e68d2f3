"""`lore serve --workers N` needs a Qdrant server: the embedded store is opened by one process only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_several_api_processes_without_a_qdrant_server_are_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(tmp_path / "lore")

    done = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--workers", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2
    assert "LORE_VECTOR_STORE__URL" in done.stderr
    assert not (tmp_path / "lore").exists(), "nothing is started or created before the refusal"
