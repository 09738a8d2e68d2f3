"""Eval runs the API starts: recorded in the database, run as background tasks (no HTTP here)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.corpora.service import read_scope
from core.db.models import EvalRunRow, utcnow
from core.errors import (
    InvalidInputError,
    LoreError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
)
from core.resources import Resources
from core.settings import EvalSettings
from evals import service as evals
from evals.judge import allowed_endpoint
from evals.suite import EvalCase, Suite, load_suite, suite_from_mapping

log = logging.getLogger("lore.api.evals")
SHIPPED = Path(evals.__file__).resolve().parent / "suites"
# Settings sections a suite sent to the API may override: how Lore retrieves and answers. Others
# (llm, database, evals...) would point the run, its judge or its baseline lookup elsewhere.
API_SETTINGS_SECTIONS = ("retrieval", "answer", "guardrails")


class RunState(StrEnum):
    """An eval run's state: pending, running, then succeeded (its gates passed), failed (a gate
    failed) or error (it could not run to the end)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"


# Finished runs, the only ones with results to compare against.
FINISHED = (RunState.SUCCEEDED, RunState.FAILED)
# A refused run is worth retrying after about this long: runs take minutes.
BUSY_RETRY_S = 60.0
BASELINE_BY_ID = "a baseline sent to the API names an earlier eval run by its ID, never a path"


def build_suite(
    resources: Resources,
    *,
    suite: dict[str, Any] | None,
    shipped: str | None,
    cases: list[dict[str, Any]] | None,
    limit: int | None,
) -> tuple[Suite, str]:
    """The suite a request names (shipped or inline) and its YAML text, as recorded with the run."""
    datasets_dir = resources.settings.evals.datasets_dir
    if (suite is None) == (shipped is None):
        raise InvalidInputError("give either `suite` or `shipped`")
    if shipped is not None:
        path = SHIPPED / f"{shipped}.yaml"
        if not shipped.replace("_", "").replace("-", "").isalnum() or not path.is_file():
            raise NotFoundError(f"no shipped suite named {shipped!r}")
        loaded, text = load_suite(path, datasets_dir=datasets_dir), path.read_text()
    else:
        try:
            inline = [EvalCase.model_validate(c) for c in cases] if cases is not None else None
        except ValidationError as exc:
            raise InvalidInputError(f"not a valid case: {exc}") from exc
        loaded = suite_from_mapping(suite, base=None, datasets_dir=datasets_dir, cases=inline)
        text = yaml.safe_dump({**(suite or {}), **({"cases": cases} if cases else {})}, sort_keys=False)
    if limit is not None:
        from evals.datasets import pick

        loaded.cases = pick(loaded.cases, limit)
    return loaded, text


def check_submitted(suite: Suite, limits: EvalSettings) -> None:
    """Refuse a suite sent to the API that exceeds the server's bounds, overrides settings it may
    not, or names a judge endpoint off the allow-list; an allowed judge is set to the listed URL.

    ``lore eval run`` is the operator's and skips this.
    """
    bounds = (
        ("cases", len(suite.cases), limits.max_cases),
        ("repeats", suite.repeats, limits.max_repeats),
        ("concurrency", suite.concurrency, limits.max_concurrency),
    )
    for what, value, most in bounds:
        if value > most:
            raise InvalidInputError(
                f"suite {suite.name!r}: {what} {value} is above {most}, the most a run started through "
                f"the API may have (setting evals.max_{what})"
            )
    refused = sorted(set(suite.settings) - set(API_SETTINGS_SECTIONS))
    if refused:
        raise InvalidInputError(
            f"suite {suite.name!r}: a suite sent to the API may override only "
            f"{', '.join(API_SETTINGS_SECTIONS)}, not {', '.join(refused)}"
        )
    if suite.judge.base_url is not None:
        listed = allowed_endpoint(suite.judge.base_url, limits.judge_endpoints)
        if listed is None:
            raise InvalidInputError(
                f"suite {suite.name!r}: judge.base_url {suite.judge.base_url!r} is not in the server's "
                "allowed judge endpoints (setting evals.judge_endpoints); leave it unset to judge with "
                "the server's own LLM"
            )
        # The request goes to the URL the operator wrote, not to another spelling of it.
        suite.judge.base_url = listed
    if suite.regression.baseline is not None and not is_run_id(suite.regression.baseline):
        raise InvalidInputError(BASELINE_BY_ID)


def is_run_id(ref: str) -> bool:
    """Whether ``ref`` is written as a run's ID (a UUID), so it is never read as a path."""
    try:
        return str(uuid.UUID(ref)) == ref
    except ValueError:
        return False


async def check_corpus_access(
    resources: Resources, principal: Principal, corpus: str
) -> frozenset[str] | None:
    """An evaluator runs suites only over corpora granted to them (a run ingests into its corpus);
    gives the caller's read scope (None: every corpus)."""
    scope = await read_scope(resources, principal)
    if scope is not None and corpus not in scope:
        raise PermissionDeniedError(f"no grant on corpus {corpus!r}; an admin can grant it")
    return scope


async def resolve_baseline(
    session: AsyncSession, ref: str | None, *, scope: frozenset[str] | None
) -> Path | None:
    """The folder of the finished run ``ref`` names, which the caller must be able to see."""
    if ref is None:
        return None
    if not is_run_id(ref):
        raise InvalidInputError(BASELINE_BY_ID)
    row = await get_run(session, ref, scope=scope)
    if row.state not in FINISHED:
        raise InvalidInputError(f"baseline run {ref} has not finished (state {row.state})")
    return Path(row.run_dir)


async def create_run(
    session: AsyncSession,
    *,
    suite: Suite,
    suite_yaml: str,
    user_id: str | None,
    runs_dir: Path,
    run_id: str | None = None,
) -> EvalRunRow:
    run_id = run_id or str(uuid.uuid4())
    row = EvalRunRow(
        id=run_id,
        suite=suite.name,
        corpus=suite.corpus,
        suite_yaml=suite_yaml,
        user_id=user_id,
        state=RunState.PENDING,
        run_dir=str(runs_dir / run_id),
    )
    session.add(row)
    await session.commit()
    return row


async def list_runs(
    session: AsyncSession, *, scope: frozenset[str] | None, limit: int = 100
) -> list[EvalRunRow]:
    """The newest runs over corpora in ``scope`` (None: every run)."""
    query = select(EvalRunRow)
    if scope is not None:
        query = query.where(EvalRunRow.corpus.in_(scope))
    rows = await session.execute(query.order_by(EvalRunRow.created_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_run(session: AsyncSession, run_id: str, *, scope: frozenset[str] | None) -> EvalRunRow:
    """The run, when its corpus is in ``scope`` (None: any run); else not found, as if it did not
    exist, so a caller learns nothing of runs over corpora they cannot read."""
    row = await session.get(EvalRunRow, run_id)
    if row is None or (scope is not None and row.corpus not in scope):
        raise NotFoundError(f"no eval run {run_id!r}")
    return row


async def execute_run(
    resources: Resources,
    run_id: str,
    suite: Suite,
    *,
    baseline: Path | None,
    in_flight: InFlight | None = None,
) -> None:
    """Run the suite over the server's resources (with the suite's retrieval settings) and record
    the outcome on the run's row; the LLM is the server's (a suite cannot swap it here)."""
    async with resources.sessions() as session:
        row = await get_run(session, run_id, scope=None)
        row.state = RunState.RUNNING
        run_dir = Path(row.run_dir)
        await session.commit()
    scoped = dataclasses.replace(resources, settings=suite.apply(resources.settings))
    outcome: dict[str, Any] = {}
    try:
        results = await evals.run_in_process(scoped, suite, out_dir=run_dir, baseline=baseline)
        outcome = {
            "state": RunState.SUCCEEDED if results["passed"] else RunState.FAILED,
            "passed": results["passed"],
            "summary": results["summary"],
            "gates": results["gates"],
        }
    except LoreError as exc:
        outcome = {"state": RunState.ERROR, "error": exc.message}
    except Exception as exc:  # recorded on the run, so the caller sees why, then logged
        log.exception("eval run %s failed", run_id)
        outcome = {"state": RunState.ERROR, "error": f"{type(exc).__name__}: {exc}"}
    async with resources.sessions() as session:
        row = await get_run(session, run_id, scope=None)
        for key, value in outcome.items():
            setattr(row, key, value)
        row.finished_at = utcnow()
        await session.commit()
    if in_flight is not None:
        in_flight.ids.discard(run_id)


INTERRUPTED = "the server stopped while the run was going on; start it again"


class InFlight:
    """The eval runs this server is running, so a shutdown can record them as interrupted."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def admit(self, run_id: str, *, most: int) -> None:
        """Count ``run_id`` as running, unless ``most`` runs already are (busy: 503)."""
        if len(self.ids) >= most:
            raise OverloadedError(
                f"{len(self.ids)} eval runs are going on, the most this server runs at once (setting "
                "evals.max_running); start this one when one has finished",
                retry_after_s=BUSY_RETRY_S,
            )
        self.ids.add(run_id)

    async def interrupt_all(self, resources: Resources) -> int:
        """Record every run still going on as ended in error (the shutdown stops it)."""
        if not self.ids:
            return 0
        async with resources.sessions() as session:
            rows = (await session.execute(select(EvalRunRow).where(EvalRunRow.id.in_(self.ids)))).scalars()
            count = 0
            for row in rows:
                if row.state in (RunState.PENDING, RunState.RUNNING):
                    row.state, row.error, row.finished_at = RunState.ERROR, INTERRUPTED, utcnow()
                    count += 1
            await session.commit()
        self.ids.clear()
        return count


def report_path(row: EvalRunRow) -> Path:
    path = Path(row.run_dir) / "report.html"
    if not path.is_file():
        raise NotFoundError(f"eval run {row.id} has no report yet (state {row.state})")
    return path


def shipped_suites() -> list[dict[str, Any]]:
    """The suites shipped with Lore: name, description and corpus of each (their datasets unread)."""
    out = []
    for path in sorted(SHIPPED.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        out.append(
            {
                "name": path.stem,
                "description": str(raw.get("description", "")).strip(),
                "corpus": raw.get("corpus"),
                "mode": raw.get("mode", "answer"),
            }
        )
    return out


async def compare_runs(
    session: AsyncSession, run_a: str, run_b: str, *, scope: frozenset[str] | None
) -> dict[str, Any]:
    """Run B against run A (both finished, both visible to the caller), regressed questions first."""
    from evals.compare import compare

    rows = [await get_run(session, ref, scope=scope) for ref in (run_a, run_b)]
    results = []
    for row in rows:
        path = Path(row.run_dir) / evals.RESULTS_FILE
        if not path.is_file():
            raise InvalidInputError(f"eval run {row.id} has no results yet (state {row.state})")
        results.append(evals.load_run(path))
    return compare(results[0], results[1], base_name=rows[0].id)
