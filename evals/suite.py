"""Eval suites: a YAML file naming a JSONL dataset, the corpus and the retrieval settings."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from core.errors import InvalidInputError


class EvalCase(BaseModel):
    question: str = Field(min_length=1)
    reference_answer: str | None = None
    reference_documents: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class Suite(BaseModel):
    name: str
    description: str = ""
    dataset: Path = Field(description="JSONL dataset, relative to the suite file.")
    corpus: str
    ingest: list[Path] = Field(default_factory=list, description="Paths ingested before the run.")
    k: int = Field(default=4, ge=1, le=50)
    cases: list[EvalCase] = Field(default_factory=list, exclude=True)


def load_suite(path: Path) -> Suite:
    """Read a suite YAML and its dataset; paths in it are relative to the YAML file."""
    if not path.is_file():
        raise InvalidInputError(f"no suite file at {path}")
    try:
        raw = yaml.safe_load(path.read_text())
        suite = Suite.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise InvalidInputError(f"{path} is not a valid suite: {exc}") from exc
    base = path.parent
    suite.dataset = (base / suite.dataset).resolve()
    suite.ingest = [(base / p).resolve() for p in suite.ingest]
    suite.cases = load_dataset(suite.dataset)
    return suite


def load_dataset(path: Path) -> list[EvalCase]:
    """Cases from a JSONL file, one JSON object per line; blank lines are skipped."""
    if not path.is_file():
        raise InvalidInputError(f"no dataset file at {path}")
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(EvalCase.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise InvalidInputError(f"{path}:{number}: not a valid case: {exc}") from exc
    if not cases:
        raise InvalidInputError(f"{path} holds no cases")
    return cases
