"""Loaders for the datasets suites point at: Lore's JSONL, BEIR (SciFact), the SEC 10-Q CSV and the
single-topic web CSVs. Each gives cases; the public ones also give the documents to ingest.

Documents keep a source each case can name: ``beir://NAME/ID`` for BEIR (as ``bench/retrieval.py``
ingests them, so their scores agree), the PDF's path for SEC 10-Q, the page URL for web pages.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.errors import InvalidInputError
from evals.suite import DatasetSpec, EvalCase, load_dataset
from ingestion.sources import Source

DEFAULT_DATASETS_DIR = Path("../shared/datasets")


def datasets_root(override: Path | None = None) -> Path:
    """The folder public datasets are read from: the setting, else ``../shared/datasets``."""
    return override if override is not None else DEFAULT_DATASETS_DIR


def load_cases(spec: DatasetSpec) -> list[EvalCase]:
    """Every case of the dataset ``spec`` names."""
    if spec.loader != "jsonl" and not spec.path.is_dir():
        raise InvalidInputError(
            f"no {spec.loader} dataset at {spec.path} (set LORE_EVALS__DATASETS_DIR to the datasets folder)"
        )
    if spec.loader == "beir":
        return beir_cases(spec.path, split=spec.split or "test")
    if spec.loader == "sec10q":
        return sec10q_cases(spec.path)
    if spec.loader == "single_topic_web":
        return single_topic_web_cases(spec.path, split=spec.split or "all")
    return load_dataset(spec.path)


def load_documents(spec: DatasetSpec) -> list[Source]:
    """The documents the dataset brings (none for JSONL, whose suites list paths to ingest)."""
    if spec.loader == "beir":
        return beir_documents(spec.path)
    if spec.loader == "sec10q":
        return [Source.from_path(p) for p in sorted((spec.path / "docs").glob("*.pdf"))]
    if spec.loader == "single_topic_web":
        return single_topic_web_documents(spec.path)
    return []


def pick(cases: Sequence[EvalCase], limit: int | None) -> list[EvalCase]:
    """``limit`` cases spread evenly over the dataset (every kind of question stays represented)."""
    if limit is None or limit >= len(cases):
        return list(cases)
    return [cases[i * len(cases) // limit] for i in range(limit)]


def _beir_name(path: Path) -> str:
    return path.parent.name if path.name == "beir_format" else path.name


def beir_source(path: Path, doc_id: str) -> str:
    return f"beir://{_beir_name(path)}/{doc_id}"


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def beir_documents(path: Path) -> list[Source]:
    """Each BEIR abstract as a Markdown document (``# title``, blank line, text)."""
    sources = []
    for doc in _jsonl(path / "corpus.jsonl"):
        title, text = doc["title"].strip(), doc["text"].strip()
        body = f"# {title}\n\n{text}\n" if title else doc["text"]
        sources.append(
            Source(source=beir_source(path, doc["_id"]), name=f"{doc['_id']}.md", data=body.encode())
        )
    return sources


def beir_cases(path: Path, *, split: str = "test") -> list[EvalCase]:
    """The queries with judgments in ``qrels/SPLIT.tsv``, with graded relevance per document ID."""
    qrels_path = path / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InvalidInputError(f"no qrels file at {qrels_path}")
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_path.read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    return [
        EvalCase(
            id=f"q{q['_id']}",
            question=q["text"],
            reference_documents=[d for d, g in qrels[q["_id"]].items() if g > 0],
            relevance=qrels[q["_id"]],
        )
        for q in _jsonl(path / "queries.jsonl")
        if q["_id"] in qrels
    ]


def sec10q_cases(path: Path, *, file: str = "qna_data.csv") -> list[EvalCase]:
    """Questions with reviewed answers; ``Source Docs`` globs (``*2023 Q1 AAPL*``) name the PDFs."""
    names = sorted(p.name for p in (path / "docs").glob("*.pdf"))
    cases = []
    with (path / file).open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            pattern = row["Source Docs"].strip()
            cases.append(
                EvalCase(
                    question=row["Question"].strip(),
                    reference_answer=row["Answer"].strip(),
                    reference_documents=[n for n in names if fnmatch.fnmatch(n, pattern)],
                    tags=[_tag(row["Question Type"]), _tag(row["Source Chunk Type"])],
                )
            )
    return cases


def _tag(text: str) -> str:
    return "-".join(text.lower().split())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    # documents.csv holds whole pages in one field, past the csv module's default limit.
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _web_urls(path: Path) -> dict[str, str]:
    return {row["index"]: row["source_url"] for row in _csv_rows(path / "documents.csv")}


def single_topic_web_documents(path: Path) -> list[Source]:
    """Each page's extracted text as a text document whose source is the page's URL."""
    return [
        Source(source=row["source_url"], name=f"page-{row['index']}.txt", data=row["text"].encode())
        for row in _csv_rows(path / "documents.csv")
    ]


_WEB_FILES = {
    "all": ("single_passage_answer", "multi_passage_answer", "no_answer"),
    "test": ("single_passage_test", "multi_passage_test", "no_answer_test"),
    "train_validate": (
        "single_passage_train_validate",
        "multi_passage_train_validate",
        "no_answer_train_validate",
    ),
}
_WEB_TAGS = ("single_passage", "multi_passage", "no_answer")


def single_topic_web_cases(path: Path, *, split: str = "all") -> list[EvalCase]:
    """Single-passage, multi-passage and unanswerable questions; answerable ones name their page."""
    if split not in _WEB_FILES:
        raise InvalidInputError(f"single_topic_web split must be one of {', '.join(_WEB_FILES)}")
    urls = _web_urls(path)
    cases = []
    for stem, tag in zip(_WEB_FILES[split], _WEB_TAGS, strict=True):
        for row in _csv_rows(path / f"{stem}_questions.csv"):
            answerable = tag != "no_answer"
            url = urls[row["document_index"]]
            cases.append(
                EvalCase(
                    question=row["question"].strip(),
                    reference_answer=(row.get("answer") or "").strip() or None,
                    reference_documents=[url] if answerable else [],
                    answerable=answerable,
                    tags=[tag],
                )
            )
    return cases
