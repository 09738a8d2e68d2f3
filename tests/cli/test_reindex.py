"""`lore reindex` as a user runs it: separate processes on a fresh data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.components.embedding import canonical_model_name
from core.indexing import collection_name

REPO = Path(__file__).resolve().parents[2]


def lore(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only this test's settings: a developer's or CI's LORE_* variables must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")} | {
        "LORE_DATA_DIR": str(data_dir),
        "LORE_INGESTION__REINDEX_DRAIN_S": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def last_json(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
def test_reindex_with_a_new_model_and_chunker_then_reingest_embeds_nothing(
    tmp_path: Path, tiny_model: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        body = " ".join(f"Sentence {j} of note {i} is about the copper bridge {j}." for j in range(30))
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\n{body}\n")
    data_dir = tmp_path / "lore"
    ingested = last_json(lore(data_dir, "ingest", str(docs), "--corpus", "notes", "--json"))

    summary = last_json(
        lore(
            data_dir,
            "reindex",
            "--corpus",
            "notes",
            "--model",
            str(tiny_model),
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
            "--json",
        )
    )

    assert summary["state"] == "succeeded"
    assert summary["documents"] == 3 and summary["chunks_embedded"] > ingested["chunks_embedded"]
    assert (summary["old_collection"], summary["new_collection"]) == (
        collection_name("notes", 1),
        collection_name("notes", 2),
    )
    assert (summary["model"], summary["chunk_tokens"], summary["chunk_overlap_tokens"]) == (
        canonical_model_name(str(tiny_model)),
        64,
        8,
    )
    again = last_json(lore(data_dir, "ingest", str(docs), "--corpus", "notes", "--json"))
    assert (again["documents_unchanged"], again["chunks_embedded"]) == (3, 0)


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
def test_reindex_of_an_unknown_corpus_says_so(tmp_path: Path) -> None:
    run = lore(tmp_path / "lore", "reindex", "--corpus", "nope")

    assert run.returncode == 2
    assert "no corpus named 'nope'" in run.stderr
