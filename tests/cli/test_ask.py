"""`lore ask` as a user sees it: only verified sentences printed, removals named on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.models

REPLY = "The Alpha widget is blue [1]. Pass --print-table to weigh it [1]."


@pytest.fixture
async def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    chosen = Settings(data_dir=tmp_path / "lore")
    async with open_resources(chosen, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="c")
    monkeypatch.setattr("cli.ask.get_settings", lambda: chosen)
    monkeypatch.setattr("core.resources.open_llm", lambda _: ScriptedLLM(REPLY))
    return chosen


def test_ask_prints_the_verified_sentences_and_names_what_it_removed(settings: Settings) -> None:
    from cli.main import app

    streamed = CliRunner().invoke(app, ["ask", "What colour is the Alpha widget?"])
    assert streamed.exit_code == 0, streamed.output
    assert "The Alpha widget is blue [1]." in streamed.stdout
    assert "--print-table" not in streamed.stdout
    assert "removed a sentence: `--print-table` is in no source" in streamed.stderr
    as_json = CliRunner().invoke(app, ["ask", "What colour is the Alpha widget, exactly?", "--json"])
    answer = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert answer["answer"] == "The Alpha widget is blue [1]." and answer["refused"] is False
    assert answer["unsupported_sentences"] == [
        {"sentence": "Pass --print-table to weigh it [1].", "reason": "`--print-table` is in no source"}
    ]
