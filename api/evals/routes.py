"""Eval routes (evaluator role): start a suite, list runs, a run's status and results, its report.

A caller sees only runs over corpora they may read; any other answers 404, as if it did not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

from api.auth.dependencies import EvaluatorPrincipal
from api.auth.principal import Principal
from api.conversations import service as conversations
from api.conversations.schemas import Rating
from api.corpora.service import read_scope
from api.dependencies import BackgroundDep, ResourcesDep, on_loop
from api.evals import service
from api.evals.schemas import (
    EvalRunCreate,
    EvalRunDetail,
    EvalRunPublic,
    FeedbackExport,
    FeedbackItem,
    ShippedSuite,
)
from api.ops.ratelimit import AdminRateLimit, EvalRateLimit
from api.schemas import ErrorResponse
from core.resources import Resources
from evals.feedback import RatedAnswer, feedback_cases, feedback_suite, of_corpus

router = APIRouter(prefix="/v1/evals", tags=["evals"], dependencies=[AdminRateLimit])


def get_in_flight(connection: HTTPConnection) -> service.InFlight:
    """The eval runs this app is running (made by its lifespan)."""
    in_flight: service.InFlight = connection.app.state.eval_runs
    return in_flight


InFlightDep = Annotated[service.InFlight, Depends(on_loop(get_in_flight))]
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse, "description": "Not found"}}
# Reports hold questions, answers and passages: shown sandboxed, nothing in them runs as Lore.
_REPORT_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
}
_START_ERRORS: dict[int | str, dict[str, object]] = {
    **_NOT_FOUND,
    429: {"model": ErrorResponse, "description": "The caller started too many runs (Retry-After)"},
    503: {"model": ErrorResponse, "description": "evals.max_running runs are going on (Retry-After)"},
}


@router.post(
    "/runs",
    response_model=EvalRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_START_ERRORS,
    dependencies=[EvalRateLimit],
)
async def start_run(
    body: EvalRunCreate,
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    background: BackgroundDep,
    in_flight: InFlightDep,
) -> EvalRunPublic:
    """Start a suite; it runs in the background. Follow it with GET /v1/evals/runs/{id}."""
    limits = resources.settings.evals
    suite, text = service.build_suite(
        resources, suite=body.suite, shipped=body.shipped, cases=body.cases, limit=body.limit
    )
    service.check_submitted(suite, limits)
    scope = await service.check_corpus_access(resources, principal, suite.corpus)
    async with resources.sessions() as session:
        # The request's baseline wins over the suite's, as on the command line; both must be runs
        # the caller can see.
        suite_baseline = await service.resolve_baseline(session, suite.regression.baseline, scope=scope)
        baseline = await service.resolve_baseline(session, body.baseline, scope=scope) or suite_baseline
        run_id = str(uuid.uuid4())
        in_flight.admit(run_id, most=limits.max_running)
        try:
            row = await service.create_run(
                session,
                suite=suite,
                suite_yaml=text,
                user_id=principal.user_id,
                runs_dir=resources.settings.eval_runs_dir,
                run_id=run_id,
            )
        except BaseException:
            in_flight.ids.discard(run_id)
            raise
        public = EvalRunPublic.from_row(row)
    background.spawn(
        service.execute_run(resources, row.id, suite, baseline=baseline, in_flight=in_flight),
        name=f"eval-{row.id}",
    )
    return public


@router.get("/runs", response_model=list[EvalRunPublic])
async def list_runs(principal: EvaluatorPrincipal, resources: ResourcesDep) -> list[EvalRunPublic]:
    """The newest runs over corpora the caller may read."""
    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        return [EvalRunPublic.from_row(r) for r in await service.list_runs(session, scope=scope)]


@router.get("/runs/{run_id}", response_model=EvalRunDetail, responses=_NOT_FOUND)
async def get_run(run_id: str, principal: EvaluatorPrincipal, resources: ResourcesDep) -> EvalRunDetail:
    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        return EvalRunDetail.from_row(await service.get_run(session, run_id, scope=scope))


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, responses=_NOT_FOUND)
async def get_report(run_id: str, principal: EvaluatorPrincipal, resources: ResourcesDep) -> HTMLResponse:
    """The run's self-contained HTML report."""
    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        row = await service.get_run(session, run_id, scope=scope)
    return HTMLResponse(service.report_path(row).read_text(), headers=_REPORT_HEADERS)


@router.get("/suites", response_model=list[ShippedSuite], summary="The suites shipped with Lore")
async def list_suites(_: EvaluatorPrincipal) -> list[ShippedSuite]:
    return [ShippedSuite(**suite) for suite in service.shipped_suites()]


@router.get(
    "/compare",
    responses=_NOT_FOUND,
    summary="Compare run b with run a: metric deltas, regression gates, questions (regressed first)",
)
async def compare_runs(
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    a: Annotated[str, Query(description="The baseline run's ID.")],
    b: Annotated[str, Query(description="The new run's ID.")],
) -> dict[str, Any]:
    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        return await service.compare_runs(session, a, b, scope=scope)


@router.get(
    "/compare/report",
    response_class=HTMLResponse,
    responses=_NOT_FOUND,
    summary="The comparison of run b with run a as a self-contained HTML report",
)
async def compare_report(
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    a: Annotated[str, Query(description="The baseline run's ID.")],
    b: Annotated[str, Query(description="The new run's ID.")],
) -> HTMLResponse:
    from evals.reports import compare_html

    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        comparison = await service.compare_runs(session, a, b, scope=scope)
    return HTMLResponse(compare_html(comparison), headers=_REPORT_HEADERS)


@router.get("/feedback", response_model=list[FeedbackItem], summary="Answers readers rated, newest first")
async def list_feedback(
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    rating: Annotated[Rating | None, Query(description="Only up or only down.")] = None,
    corpus: Annotated[
        str | None, Query(description="Only conversations on this corpus (or on none).")
    ] = None,
) -> list[FeedbackItem]:
    rated = await _rated(resources, principal, rating, corpus)
    return [FeedbackItem.of(r) for r in rated]


@router.get(
    "/feedback/export",
    response_model=FeedbackExport,
    summary="Rated answers as an eval suite and its cases: POST it to /v1/evals/runs to run it",
)
async def export_feedback(
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    response: Response,
    rating: Annotated[Rating | None, Query(description="Only up or only down.")] = "down",
    corpus: Annotated[str | None, Query(description="The corpus the suite runs over.")] = None,
    name: Annotated[str, Query(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")] = "feedback",
) -> FeedbackExport:
    rated = await _rated(resources, principal, rating, corpus)
    suite = feedback_suite(rated, corpus=corpus, name=name)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return FeedbackExport(suite=suite, cases=feedback_cases(rated))


async def _rated(
    resources: Resources, principal: Principal, rating: str | None, corpus: str | None
) -> list[RatedAnswer]:
    """Rated answers of conversations on corpora the caller may read (or on no corpus)."""
    scope = await read_scope(resources, principal)
    async with resources.sessions() as session:
        rated = await conversations.rated_answers(session, rating=rating)
    visible = [r for r in rated if r.corpus is None or scope is None or r.corpus in scope]
    return of_corpus(visible, corpus)
