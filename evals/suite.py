"""Eval suites: a YAML file naming a dataset, the corpus, settings overrides, metrics, gates, judge.

A suite's dataset is a JSONL file of cases, or one of the public datasets Lore has loaders for
(see :mod:`evals.datasets`), which also bring the documents to ingest. Paths in a suite are
relative to the suite file, except a loader's ``path``, which is relative to the datasets folder
(setting ``evals.datasets_dir``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import InvalidInputError
from core.settings import Settings


class EvalCase(BaseModel):
    """One question, with what a right answer looks like when the dataset knows."""

    id: str = ""
    question: str = Field(min_length=1)
    reference_answer: str | None = None
    reference_documents: list[str] = Field(
        default_factory=list, description="Names, URLs or IDs of documents that answer it."
    )
    relevance: dict[str, int] = Field(
        default_factory=dict, description="Graded relevance per reference document (qrels); default 1 each."
    )
    reference_contexts: list[str] = Field(
        default_factory=list, description="Passages that answer it (generated suites record their chunk)."
    )
    answerable: bool = True
    tags: list[str] = Field(default_factory=list)
    notes: str = Field(default="", description="Why the case is here, e.g. a reader's feedback comment.")

    def model_post_init(self, context: Any, /) -> None:
        if not self.id:
            self.id = case_id(self.question)

    def graded(self) -> dict[str, int]:
        """Reference documents with their graded relevance."""
        return self.relevance or dict.fromkeys(self.reference_documents, 1)


def case_id(question: str) -> str:
    """A case's ID derived from its question, so a resumed or compared run finds it again."""
    return hashlib.sha256(question.strip().encode()).hexdigest()[:12]


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loader: Literal["jsonl", "beir", "sec10q", "single_topic_web"] = "jsonl"
    path: Path = Field(
        default=Path("cases.jsonl"),
        description="jsonl: the file (relative to the suite); others: their folder.",
    )
    split: str | None = Field(
        default=None, description="beir: qrels split (test); single_topic_web: all, test or train_validate."
    )
    limit: int | None = Field(
        default=None, ge=1, description="Run this many cases, picked evenly across the dataset."
    )
    ingest_documents: bool = Field(
        default=True, description="Ingest the loader's documents into the suite's corpus before the run."
    )


class Threshold(BaseModel):
    """Absolute bounds a metric's suite-level value must respect."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None


class Regression(BaseModel):
    """Largest allowed change of each metric against a baseline run (a run directory or ID)."""

    model_config = ConfigDict(extra="forbid")

    baseline: str | None = None
    max_drop: dict[str, float] = Field(
        default_factory=dict, description="Metric -> largest allowed fall (rise, for latency and tokens)."
    )


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint of the judge; unset: the settings' LLM endpoint.",
    )
    model: str | None = None
    api_key: str | None = None
    metrics: list[str] = Field(
        default_factory=lambda: [
            "faithfulness",
            "answer_relevancy",
            "context_precision",
            "context_recall",
            "answer_correctness",
            "g_eval",
        ]
    )
    criteria: str = Field(
        default=(
            "The answer responds to the question, states only what the sources support, and says "
            "plainly when the sources do not contain the answer."
        ),
        description="The G-Eval rubric's criteria.",
    )
    max_tokens: int = Field(default=1024, ge=16, description="Generous: truncated JSON is unparseable.")
    constrained: bool = Field(default=True, description="Ask for JSON-schema constrained output.")
    max_context_chars: int = Field(
        default=6000,
        ge=200,
        description="Retrieved context shown to the judge, in characters (small judges have small windows).",
    )
    calibration_size: int = Field(
        default=6, ge=0, description="Reference answers perturbed into the judge's calibration set."
    )


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    corpus: str
    ingest: list[Path] = Field(default_factory=list, description="Paths ingested before the run.")
    k: int = Field(default=4, ge=1, le=50)
    mode: Literal["answer", "retrieve"] = Field(
        default="answer", description="answer: the full pipeline; retrieve: retrieval metrics only (no LLM)."
    )
    retrieval_depth: int | None = Field(
        default=None, ge=1, description="retrieve mode: chunks fetched per question (default k)."
    )
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings overrides by section, e.g. {retrieval: {mode: dense}}."
    )
    metrics: list[str] | None = Field(
        default=None, description="Metrics to report (default: all that apply)."
    )
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    regression: Regression = Field(default_factory=Regression)
    repeats: int = Field(default=1, ge=1, le=20, description="Runs of every case; gates use the mean.")
    concurrency: int = Field(default=1, ge=1, le=64, description="Cases in flight at once.")
    judge: JudgeSpec = Field(default_factory=JudgeSpec)
    cases: list[EvalCase] = Field(default_factory=list, exclude=True)
    source_path: Path | None = Field(default=None, exclude=True)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        # `dataset: file.jsonl` is the common case.
        return {"path": value} if isinstance(value, str) else value

    @field_validator("thresholds", mode="before")
    @classmethod
    def _threshold_shorthand(cls, value: Any) -> Any:
        # `hit@4: 0.8` means at least 0.8.
        if isinstance(value, dict):
            return {k: {"min": v} if isinstance(v, int | float) else v for k, v in value.items()}
        return value

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with the suite's overrides applied, section by section (validated)."""
        updates = {}
        for section, values in self.settings.items():
            current = getattr(settings, section, None)
            if not isinstance(current, BaseModel):
                raise InvalidInputError(f"suite {self.name!r}: no settings section named {section!r}")
            try:
                updates[section] = type(current).model_validate(current.model_dump() | values)
            except ValidationError as exc:
                raise InvalidInputError(f"suite {self.name!r}: bad {section} settings: {exc}") from exc
        return settings.model_copy(update=updates)


def load_suite(path: Path, *, datasets_dir: Path | None = None) -> Suite:
    """Read a suite YAML and its dataset (documents to ingest are loaded by the runner)."""
    if not path.is_file():
        raise InvalidInputError(f"no suite file at {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not a valid suite: {exc}") from exc
    return suite_from_mapping(raw, base=path.parent, datasets_dir=datasets_dir, label=str(path), source=path)


def suite_from_mapping(
    raw: Any,
    *,
    base: Path | None,
    datasets_dir: Path | None = None,
    label: str = "suite",
    source: Path | None = None,
    cases: list[EvalCase] | None = None,
) -> Suite:
    """A suite from its parsed YAML. ``base`` resolves relative paths (None: a JSONL dataset or
    ingest paths are refused, as for suites sent to the API, which give ``cases`` inline)."""
    from evals import datasets

    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInputError(f"{label} is not a valid suite: {exc}") from exc
    suite.source_path = source.resolve() if source is not None else None
    try:
        if suite.dataset.loader != "jsonl":
            root = datasets.datasets_root(datasets_dir).resolve()
            suite.dataset.path = (root / suite.dataset.path).resolve()
            if base is None and not suite.dataset.path.is_relative_to(root):
                raise InvalidInputError(f"{label}: the dataset must lie in the datasets folder")
            loaded = datasets.load_cases(suite.dataset)
        elif cases is not None:
            loaded = cases
        elif base is not None:
            suite.dataset.path = (base / suite.dataset.path).resolve()
            loaded = datasets.load_cases(suite.dataset)
        else:
            raise InvalidInputError(f"{label}: give the cases inline or a dataset loader, not a JSONL path")
    except (OSError, ValueError, KeyError) as exc:  # unreadable files, malformed rows
        raise InvalidInputError(f"{label}: cannot read its dataset: {exc}") from exc
    if suite.ingest and base is None:
        raise InvalidInputError(f"{label}: ingest paths are not accepted here")
    suite.ingest = [(base / p).resolve() for p in suite.ingest] if base is not None else []
    suite.cases = datasets.pick(loaded, suite.dataset.limit)
    if not suite.cases:
        raise InvalidInputError(f"{label} has no cases")
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
