"""`lore eval` on a BEIR dataset scores retrieval exactly as bench/retrieval.py does (same data dir,
same settings): the suite's loader ingests the same documents and ranks them the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import Settings

pytestmark = pytest.mark.models
SUITE_FILE = Path(__file__).resolve().parents[2] / "evals" / "suites" / "scifact.yaml"

DOCS = {
    "1": ("Cell division", "Mitosis splits one cell into two identical daughter cells."),
    "2": ("Protein folding", "Chaperones help proteins fold into their native shapes."),
    "3": ("Bacterial growth", "Bacteria divide by binary fission when nutrients are plentiful."),
    "4": ("Vaccines", "Vaccines train the immune system to recognise a pathogen."),
    "5": ("Sleep", "Sleep deprivation impairs memory consolidation in adults."),
    "6": ("Gut flora", "Gut bacteria ferment dietary fibre into short-chain fatty acids."),
}
QUERIES = {
    "q1": "How do cells divide?",
    "q2": "What helps proteins fold?",
    "q3": "Does lack of sleep affect memory?",
}
QRELS = [("q1", "1", 2), ("q1", "3", 1), ("q2", "2", 1), ("q3", "5", 1), ("q3", "6", 0)]


def _dataset(root: Path) -> Path:
    folder = root / "scifact" / "beir_format"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": q}) + "\n" for i, q in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS)
    )
    return folder


async def test_suite_metrics_equal_the_retrieval_benchmarks(tmp_path: Path) -> None:
    from bench.retrieval import run as bench_run
    from core.resources import open_resources
    from evals import service
    from evals.suite import load_suite

    dataset = _dataset(tmp_path / "datasets")
    data_dir = tmp_path / "lore"
    bench = (await bench_run(dataset, data_dir, ["hybrid"]))["hybrid"]

    suite = load_suite(SUITE_FILE, datasets_dir=tmp_path / "datasets")
    settings = suite.apply(Settings(data_dir=data_dir))
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        results = await service.run_in_process(resources, suite, out_dir=tmp_path / "run")
    metrics = results["summary"]["metrics"]
    assert results["summary"]["ingest"]["documents_new"] == 0  # the benchmark's documents, unchanged
    assert metrics["ndcg@10"] == pytest.approx(bench["nDCG@10"], abs=1e-12)
    assert metrics["recall@10"] == pytest.approx(bench["recall@10"], abs=1e-12)
    assert metrics["recall@100"] == pytest.approx(bench["recall@100"], abs=1e-12)
    assert 0 < metrics["ndcg@10"] <= 1
