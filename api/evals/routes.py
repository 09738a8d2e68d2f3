"""Eval routes (evaluator role): start a suite, list runs, a run's status and results, its report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

from api.auth.dependencies import EvaluatorPrincipal
from api.dependencies import BackgroundDep, ResourcesDep, on_loop
from api.evals import service
from api.evals.schemas import EvalRunCreate, EvalRunDetail, EvalRunPublic
from api.ops.ratelimit import AdminRateLimit
from api.schemas import ErrorResponse

router = APIRouter(prefix="/v1/evals", tags=["evals"], dependencies=[AdminRateLimit])


def get_in_flight(connection: HTTPConnection) -> service.InFlight:
    """The eval runs this app is running (made by its lifespan)."""
    in_flight: service.InFlight = connection.app.state.eval_runs
    return in_flight


InFlightDep = Annotated[service.InFlight, Depends(on_loop(get_in_flight))]
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse, "description": "Not found"}}


@router.post(
    "/runs", response_model=EvalRunPublic, status_code=status.HTTP_202_ACCEPTED, responses=_NOT_FOUND
)
async def start_run(
    body: EvalRunCreate,
    principal: EvaluatorPrincipal,
    resources: ResourcesDep,
    background: BackgroundDep,
    in_flight: InFlightDep,
) -> EvalRunPublic:
    """Start a suite; it runs in the background. Follow it with GET /v1/evals/runs/{id}."""
    suite, text = service.build_suite(
        resources, suite=body.suite, shipped=body.shipped, cases=body.cases, limit=body.limit
    )
    await service.check_corpus_access(resources, principal, suite.corpus)
    async with resources.sessions() as session:
        row = await service.create_run(
            session,
            suite=suite,
            suite_yaml=text,
            user_id=principal.user_id,
            runs_dir=resources.settings.eval_runs_dir,
        )
        public = EvalRunPublic.from_row(row)
    in_flight.ids.add(row.id)
    background.spawn(
        service.execute_run(resources, row.id, suite, baseline=body.baseline, in_flight=in_flight),
        name=f"eval-{row.id}",
    )
    return public


@router.get("/runs", response_model=list[EvalRunPublic])
async def list_runs(_: EvaluatorPrincipal, resources: ResourcesDep) -> list[EvalRunPublic]:
    async with resources.sessions() as session:
        return [EvalRunPublic.from_row(r) for r in await service.list_runs(session)]


@router.get("/runs/{run_id}", response_model=EvalRunDetail, responses=_NOT_FOUND)
async def get_run(run_id: str, _: EvaluatorPrincipal, resources: ResourcesDep) -> EvalRunDetail:
    async with resources.sessions() as session:
        return EvalRunDetail.from_row(await service.get_run(session, run_id))


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, responses=_NOT_FOUND)
async def get_report(run_id: str, _: EvaluatorPrincipal, resources: ResourcesDep) -> HTMLResponse:
    """The run's self-contained HTML report."""
    async with resources.sessions() as session:
        row = await service.get_run(session, run_id)
    return HTMLResponse(service.report_path(row).read_text())
