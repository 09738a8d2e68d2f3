"""Dataset loaders on tiny fixtures built here, and the shipped suites on the real datasets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evals import datasets
from evals.suite import DatasetSpec, EvalCase, load_suite

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"


def _beir(root: Path) -> Path:
    folder = root / "tiny" / "beir_format"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        json.dumps({"_id": "10", "title": "Cells", "text": "Cells divide."})
        + "\n"
        + json.dumps({"_id": "11", "title": "", "text": "No title here."})
        + "\n"
    )
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "Do cells divide?"})
        + "\n"
        + json.dumps({"_id": "2", "text": "unjudged"})
        + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t10\t2\n1\t11\t0\n")
    return folder


def test_beir_loader_keeps_graded_qrels_and_the_benchmarks_sources(tmp_path: Path) -> None:
    folder = _beir(tmp_path)
    cases = datasets.beir_cases(folder)
    assert [c.question for c in cases] == ["Do cells divide?"]  # unjudged queries are left out
    assert cases[0].relevance == {"10": 2, "11": 0}
    assert cases[0].reference_documents == ["10"]
    docs = datasets.beir_documents(folder)
    assert [d.source for d in docs] == ["beir://tiny/10", "beir://tiny/11"]
    assert docs[0].data == b"# Cells\n\nCells divide.\n"


def _web(root: Path) -> Path:
    folder = root / "web"
    folder.mkdir()

    def write(name: str, rows: list[dict[str, str]]) -> None:
        with (folder / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write(
        "documents.csv",
        [{"index": "0", "source_url": "https://a.example/x", "text": "Kin drop keys. " * 20000}],
    )
    write(
        "single_passage_answer_questions.csv",
        [{"document_index": "0", "question": "What drops?", "answer": "Keys."}],
    )
    write(
        "multi_passage_answer_questions.csv", [{"document_index": "0", "question": "Who?", "answer": "Kin."}]
    )
    write("no_answer_questions.csv", [{"document_index": "0", "question": "How tall?"}])
    return folder


def test_single_topic_web_loader_reads_huge_fields_and_marks_unanswerable(tmp_path: Path) -> None:
    folder = _web(tmp_path)
    cases = datasets.single_topic_web_cases(folder)
    assert [(c.question, c.answerable, c.tags) for c in cases] == [
        ("What drops?", True, ["single_passage"]),
        ("Who?", True, ["multi_passage"]),
        ("How tall?", False, ["no_answer"]),
    ]
    assert cases[0].reference_documents == ["https://a.example/x"]
    assert cases[2].reference_documents == []
    [doc] = datasets.single_topic_web_documents(folder)
    assert doc.source == "https://a.example/x" and doc.name.endswith(".txt")


def test_sec10q_loader_expands_source_globs(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for name in ("2023 Q1 AAPL.pdf", "2023 Q2 AAPL.pdf", "2023 Q1 NVDA.pdf"):
        (tmp_path / "docs" / name).write_bytes(b"%PDF")
    (tmp_path / "qna_data.csv").write_text(
        "\ufeffQuestion,Source Docs,Question Type,Source Chunk Type,Answer\n"
        'Apple sales?,*AAPL*,Multi-Doc RAG,Table,"Up, then down."\n'
    )
    [case] = datasets.sec10q_cases(tmp_path)
    assert case.reference_documents == ["2023 Q1 AAPL.pdf", "2023 Q2 AAPL.pdf"]
    assert case.tags == ["multi-doc-rag", "table"]
    assert case.reference_answer == "Up, then down."


def test_limit_picks_cases_evenly() -> None:
    cases = [EvalCase(question=f"q{i}") for i in range(10)]
    assert [c.question for c in datasets.pick(cases, 3)] == ["q0", "q3", "q6"]
    assert len(datasets.pick(cases, 50)) == 10


def test_case_ids_are_derived_from_the_question() -> None:
    assert EvalCase(question="same").id == EvalCase(question=" same ").id
    assert EvalCase(question="a").id != EvalCase(question="b").id


def test_a_missing_dataset_folder_names_the_setting(tmp_path: Path) -> None:
    from core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="LORE_EVALS__DATASETS_DIR"):
        datasets.load_cases(DatasetSpec(loader="beir", path=tmp_path / "missing"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/datasets")
def test_shipped_suites_load_from_the_shared_datasets() -> None:
    web = load_suite(REPO / "evals" / "suites" / "single_topic_web.yaml", datasets_dir=SHARED)
    assert len(web.cases) == 120
    assert sum(not c.answerable for c in web.cases) == 40
    assert len(datasets.load_documents(web.dataset)) == 20
    scifact = load_suite(REPO / "evals" / "suites" / "scifact.yaml", datasets_dir=SHARED)
    assert len(scifact.cases) == 300
    assert scifact.mode == "retrieve"
    sec = load_suite(REPO / "evals" / "suites" / "sec10q.yaml", datasets_dir=SHARED)
    assert len(sec.cases) == 195 and all(c.reference_documents for c in sec.cases)
    assert len(datasets.load_documents(sec.dataset)) == 20


def test_a_malformed_dataset_is_a_clear_error(tmp_path: Path) -> None:
    from core.errors import InvalidInputError
    from evals.suite import suite_from_mapping

    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "documents.csv").write_text("index,url\n0,https://a.example\n")  # no source_url column
    (folder / "single_passage_answer_questions.csv").write_text("document_index,question,answer\n0,Q?,A\n")
    raw = {"name": "w", "corpus": "c", "dataset": {"loader": "single_topic_web", "path": "web"}}
    with pytest.raises(InvalidInputError, match="cannot read its dataset"):
        suite_from_mapping(raw, base=None, datasets_dir=tmp_path)
