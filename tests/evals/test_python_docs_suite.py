"""The shipped python_docs suite (questions over the Python 3.11 manual) and its dataset check.

Nothing is ingested here; tests that read the manual skip when python3.11-doc is not installed.
"""

from pathlib import Path

import pytest

from bench.python_docs_check import ROOT, check_absent, check_answerable, pages_by_name
from evals.runner import document_keys
from evals.suite import Suite, load_suite
from ingestion.sources import discover

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "evals" / "suites" / "python_docs.yaml"
needs_manual = pytest.mark.skipif(not ROOT.is_dir(), reason="python3.11-doc is not installed")


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(SUITE)


def test_suite_has_answerable_and_never_mentioned_questions(suite: Suite) -> None:
    unanswerable = [c for c in suite.cases if not c.answerable]
    assert len(suite.cases) >= 40
    assert len(unanswerable) >= 10
    assert len({c.id for c in suite.cases}) == len(suite.cases)
    for case in suite.cases:
        if case.answerable:
            assert case.reference_answer and case.reference_documents, case.question
        else:
            assert not case.reference_documents, case.question
    assert (suite.corpus, suite.mode, suite.k) == ("eval-python-docs", "answer", 4)


def test_suite_ingests_the_pages_but_not_the_rest_sources_or_indexes(suite: Suite) -> None:
    assert suite.ingest
    for path in suite.ingest:
        assert path.is_relative_to(ROOT) and path != ROOT
        first = path.relative_to(ROOT).parts[0]
        assert not first.startswith("_") and not first.startswith("genindex"), path


@needs_manual
def test_every_reference_document_matches_exactly_one_ingested_page(suite: Suite) -> None:
    # Matched the way the runner matches a retrieved passage: by its source path or file name.
    sources = [src.source for src in discover(suite.ingest)]
    assert sources and all(s.endswith(".html") for s in sources)
    keys = [document_keys({"source": source}) for source in sources]
    for case in suite.cases:
        for reference in case.reference_documents:
            assert sum(reference in k for k in keys) == 1, reference


def test_check_finds_evidence_missing_from_a_page(tmp_path: Path) -> None:
    page = tmp_path / "library" / "demo.html"
    page.parent.mkdir()
    page.write_text(
        "<html><body><div role='main'><p>The <code>frob()</code> call spins.</p></div></body></html>"
    )
    names, ingested = pages_by_name(tmp_path), {page}
    case = {"reference_answer": "frob() spins", "reference_documents": ["demo.html"]}
    assert check_answerable({**case, "evidence": "the frob() call spins"}, tmp_path, names, ingested) == []
    problems = check_answerable({**case, "evidence": "the frob() call stops"}, tmp_path, names, ingested)
    assert problems and "evidence" in problems[0]
    assert check_answerable({**case, "evidence": "spins"}, tmp_path, names, set()) != []


def test_check_finds_an_absent_term_that_occurs() -> None:
    files = [(Path("_sources/library/itertools.rst.txt"), "def batched(iterable, n):")]
    assert check_absent({"absent_terms": ["Batched"]}, files)
    assert check_absent({"absent_terms": ["sys.monitoring"]}, files) == []
    assert check_absent({"absent_terms": []}, files)
