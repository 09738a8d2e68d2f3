"""Eval routes (evaluator role): start a suite, list runs, a run's status and results, its report.

A caller sees only runs over corpora they may read; any other answers 404, as if it did not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

from api.auth.dependencies import EvaluatorPrincipal
from api.corpora.service import read_scope
from api.dependencies import BackgroundDep, ResourcesDep, on_loop
from api.evals import service
from api.evals.schemas import EvalRunCreate, EvalRunDetail, EvalRunPublic
from api.ops.ratelimit import AdminRateLimit, EvalRateLimit
from api.schemas import ErrorResponse

router = APIRouter(prefix="/v1/evals", tags=["evals"], dependencies=[AdminRateLimit])


def get_in_flight(connection: HTTPConnection) -> service.InFlight:
    """The eval runs this app is running (made by its lifespan)."""
    in_flight: service.InFlight = connection.app.state.eval_runs
    return in_flight


InFlightDep = Annotated[service.InFlight, Depends(on_loop(get_in_flight))]
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse, "description": "Not found"}}
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
    return HTMLResponse(service.report_path(row).read_text())
