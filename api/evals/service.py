"""Eval runs the API starts: recorded in the database, run as background tasks (no HTTP here)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.corpora.service import read_scope
from core.db.models import EvalRunRow, utcnow
from core.errors import InvalidInputError, LoreError, NotFoundError, PermissionDeniedError
from core.resources import Resources
from evals import service as evals
from evals.suite import EvalCase, Suite, load_suite, suite_from_mapping

log = logging.getLogger("lore.api.evals")
SHIPPED = Path(evals.__file__).resolve().parent / "suites"


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


async def check_corpus_access(resources: Resources, principal: Principal, corpus: str) -> None:
    """An evaluator runs suites only over corpora granted to them (a run ingests into its corpus)."""
    scope = await read_scope(resources, principal)
    if scope is not None and corpus not in scope:
        raise PermissionDeniedError(f"no grant on corpus {corpus!r}; an admin can grant it")


async def create_run(
    session: AsyncSession, *, suite: Suite, suite_yaml: str, user_id: str | None, runs_dir: Path
) -> EvalRunRow:
    run_id = str(uuid.uuid4())
    row = EvalRunRow(
        id=run_id,
        suite=suite.name,
        suite_yaml=suite_yaml,
        user_id=user_id,
        state="pending",
        run_dir=str(runs_dir / run_id),
    )
    session.add(row)
    await session.commit()
    return row


async def list_runs(session: AsyncSession, *, limit: int = 100) -> list[EvalRunRow]:
    rows = await session.execute(select(EvalRunRow).order_by(EvalRunRow.created_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_run(session: AsyncSession, run_id: str) -> EvalRunRow:
    row = await session.get(EvalRunRow, run_id)
    if row is None:
        raise NotFoundError(f"no eval run {run_id!r}")
    return row


async def execute_run(
    resources: Resources,
    run_id: str,
    suite: Suite,
    *,
    baseline: str | None,
    in_flight: InFlight | None = None,
) -> None:
    """Run the suite over the server's resources (with the suite's retrieval settings) and record
    the outcome on the run's row; the LLM is the server's (a suite cannot swap it here)."""
    async with resources.sessions() as session:
        row = await get_run(session, run_id)
        row.state = "running"
        run_dir = Path(row.run_dir)
        await session.commit()
    scoped = dataclasses.replace(resources, settings=suite.apply(resources.settings))
    outcome: dict[str, Any] = {}
    try:
        results = await evals.run_in_process(scoped, suite, out_dir=run_dir, baseline=baseline)
        outcome = {
            "state": "succeeded" if results["passed"] else "failed",
            "passed": results["passed"],
            "summary": results["summary"],
            "gates": results["gates"],
        }
    except LoreError as exc:
        outcome = {"state": "error", "error": exc.message}
    except Exception as exc:  # recorded on the run, so the caller sees why, then logged
        log.exception("eval run %s failed", run_id)
        outcome = {"state": "error", "error": f"{type(exc).__name__}: {exc}"}
    async with resources.sessions() as session:
        row = await get_run(session, run_id)
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

    async def interrupt_all(self, resources: Resources) -> int:
        """Record every run still going on as ended in error (the shutdown stops it)."""
        if not self.ids:
            return 0
        async with resources.sessions() as session:
            rows = (await session.execute(select(EvalRunRow).where(EvalRunRow.id.in_(self.ids)))).scalars()
            count = 0
            for row in rows:
                if row.state in ("pending", "running"):
                    row.state, row.error, row.finished_at = "error", INTERRUPTED, utcnow()
                    count += 1
            await session.commit()
        self.ids.clear()
        return count


def report_path(row: EvalRunRow) -> Path:
    path = Path(row.run_dir) / "report.html"
    if not path.is_file():
        raise NotFoundError(f"eval run {row.id} has no report yet (state {row.state})")
    return path
