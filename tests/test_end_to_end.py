"""The main job on embedded defaults with the real models: ingest data/, ask, re-ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"

pytestmark = pytest.mark.models


def lore(
    *args: str, data_dir: Path, stdin: str | None = None, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(data_dir)
    env |= settings or {}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("e2e") / "lore"
    done = lore("ingest", str(DATA), "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["documents_new"] == 10 and summary["documents_failed"] == 0
    assert summary["chunks_embedded"] > 0
    return data_dir


def test_reingest_reports_nothing_embedded(ingested: Path) -> None:
    again = lore("ingest", str(DATA), "--json", data_dir=ingested)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    for key in (
        "documents_new",
        "documents_changed",
        "documents_unchanged",
        "documents_failed",
        "documents_deleted",
        "chunks_embedded",
        "seconds",
    ):
        assert key in summary
    assert summary["chunks_embedded"] == 0
    assert summary["documents_unchanged"] == 10


def test_answer_cites_the_expected_document(ingested: Path) -> None:
    case = next(
        json.loads(line)
        for line in (DATA / "evals" / "sample.jsonl").read_text().splitlines()
        if "security-guide.pdf" in line and "page-3" in line
    )
    done = lore("ask", case["question"], "--json", data_dir=ingested)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["answer"].strip()
    cited = {Path(c["source"]).name for c in answer["citations"]}
    assert set(case["reference_documents"]) & cited, answer
    assert all(c["page"] for c in answer["citations"] if c["source"].endswith(".pdf"))


def test_ask_streams_text_then_citations(ingested: Path) -> None:
    done = lore("ask", "Which file types can lore ingest read?", data_dir=ingested)
    assert done.returncode == 0, done.stderr
    assert "Sources" in done.stdout
    assert done.stdout.index("Sources") > 0


def test_a_streamed_draft_its_sources_do_not_support_is_never_shown(ingested: Path) -> None:
    # Every word a sentence adds to the question must be in its source: SmolLM2's draft fails.
    strict = {"LORE_RETRIEVAL__CITATION_MIN_SUPPORT": "1.0", "LORE_ANSWER__MODE": "generate"}
    question = "Which HTTP header carries an API key?"
    streamed = lore("ask", question, data_dir=ingested, settings=strict)
    assert streamed.returncode == 0, streamed.stderr
    assert "removed a sentence:" in streamed.stderr
    assert "The documents do not appear to contain an answer" in streamed.stdout
    # --json says it is a refusal, and why.
    as_json = lore("ask", question, "--json", data_dir=ingested, settings=strict)
    answer = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert answer["refused"] is True and answer["citations"] == []
    assert answer["guardrails"]["groundedness"].startswith("0 of ")
    assert answer["unsupported_sentences"] and all(u["reason"] for u in answer["unsupported_sentences"])


def test_unknown_corpus_is_a_clear_error(ingested: Path) -> None:
    done = lore("ask", "anything", "--corpus", "nope", data_dir=ingested)
    assert done.returncode == 2
    assert "no corpus named 'nope'" in done.stderr


def test_jobs_and_documents_can_be_listed(ingested: Path) -> None:
    jobs = lore("jobs", "list", "--json", data_dir=ingested)
    assert jobs.returncode == 0, jobs.stderr
    listed = json.loads(jobs.stdout)
    assert listed and {j["state"] for j in listed} == {"succeeded"}
    shown = lore("jobs", "show", listed[-1]["id"], "--json", data_dir=ingested)
    assert json.loads(shown.stdout)["documents_new"] == 10
    cancel = lore("jobs", "cancel", listed[-1]["id"], data_dir=ingested)
    assert cancel.returncode == 2 and "not running" in cancel.stderr
    docs = lore("documents", "list", "--corpus", "default", "--json", data_dir=ingested)
    names = {Path(d["source"]).name for d in json.loads(docs.stdout)}
    assert {"security-guide.pdf", "deployment.html", "overview.md"} <= names and len(names) == 10
