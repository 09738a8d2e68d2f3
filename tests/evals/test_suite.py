from pathlib import Path

import pytest

from core.errors import InvalidInputError
from evals.suite import load_suite

REPO = Path(__file__).resolve().parents[2]


def test_sample_suite_loads_with_paths_relative_to_the_file() -> None:
    suite = load_suite(REPO / "data" / "evals" / "sample.yaml")
    assert suite.corpus == "default"
    assert len(suite.cases) >= 10
    assert suite.ingest == [(REPO / "data" / "corpus").resolve()]
    names = {p.name for p in (REPO / "data" / "corpus").iterdir()}
    for case in suite.cases:
        assert case.reference_documents and set(case.reference_documents) <= names


def test_bad_dataset_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: s\ndataset: d.jsonl\ncorpus: c\n")
    (tmp_path / "d.jsonl").write_text('{"question": "ok"}\n{"nope": 1}\n')
    with pytest.raises(InvalidInputError, match=r"d.jsonl:2"):
        load_suite(tmp_path / "s.yaml")


def test_missing_suite_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no suite file"):
        load_suite(tmp_path / "missing.yaml")
