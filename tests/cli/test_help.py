"""`lore ... --help` tells what a command takes, quickly: `lore ingest` names every format Lore reads."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from cli.main import app
from ingestion.extract import SUPPORTED_SUFFIXES
from tests.served import REPO


def test_ingest_help_names_every_supported_suffix() -> None:
    shown = CliRunner().invoke(app, ["ingest", "--help"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    # `.htm` only where it stands alone, not as the start of `.html`.
    missing = [s for s in SUPPORTED_SUFFIXES if not re.search(rf"{re.escape(s)}(?!\w)", text)]
    assert not missing, f"name these in the docstring of cli/ingest.py's ingest(): {missing}"


def test_lore_help_lists_the_commands_without_loading_models_or_the_api() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("mcp", "ingest", "worker", "crawl", "reindex", "ask", "serve", "db", "eval", "batch"):
        assert re.search(rf"^\W*{command}\s", done.stdout, re.MULTILINE), (command, done.stdout)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = ("torch", "sentence_transformers", "llama_cpp", "uvicorn", "api.app", "retrieval.service")
    assert not imported & set(heavy), sorted(imported & set(heavy))
