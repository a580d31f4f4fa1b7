"""RunsFunction: durable runs (the HTTP API's run routes): invoke an agent, start and
steer runs, read their events, decide approvals and answer questions.

Its own function, apart from AgentsFunction's registry, tools and usage: each serves fewer
routes, so each imports (and starts cold) faster.
"""

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from fastapi.responses import JSONResponse

from functions.runs.schemas import (
    AgentCode,
    AnswerRequest,
    ApprovalResponse,
    CreateRunRequest,
    DecisionRequest,
    EventResponse,
    EventsResponse,
    InvokeAccepted,
    InvokeRequest,
    InvokeResult,
    QuestionResponse,
    RunAccepted,
    RunResponse,
    RunSummary,
    StepKey,
    WorkflowResponse,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.limits import MAX_EVENTS_PER_PAGE, MAX_WAIT_SECONDS
from guildstack.domain.paging import PageRequest
from guildstack.domain.vocabulary import GateStatus, RunKind, RunStatus
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.openapi import MODEL_CALL
from guildstack.http.pagination import ListResponse, list_of, page_request
from guildstack.http.tickets import StreamTicketResponse

if TYPE_CHECKING:
    from guildstack.services.runs import RunService
    from guildstack.services.stream_access import StreamAccess
    from guildstack.services.workflows import WorkflowTemplates

Runs = Annotated["Scoped[RunService]", Depends(in_workspace(lambda c: c.runs))]
Access = Annotated["Scoped[StreamAccess]", Depends(in_workspace(lambda c: c.stream_access))]
Templates = Annotated["Scoped[WorkflowTemplates]", Depends(in_workspace(lambda c: c.workflows))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post(
    "/agents/{code}/invoke",
    response_model=None,
    responses={
        200: {"model": InvokeResult, "description": "The run finished within the wait."},
        202: {"model": InvokeAccepted, "description": "Started; follow it at `Location`."},
        **MODEL_CALL,
    },
)
async def invoke_agent(
    code: AgentCode, body: InvokeRequest, ws: Runs
) -> InvokeResult | JSONResponse:
    """`wait=true`: the output once the run finishes (bounded); otherwise 202 and the run id."""
    run, finished = await ws.service.invoke(
        ws.principal,
        ws.workspace_id,
        code,
        body.input,
        wait_seconds=MAX_WAIT_SECONDS if body.wait else 0,
    )
    if finished:
        return InvokeResult.of(run)
    accepted = InvokeAccepted(run_id=str(run.id), status=run.status.value)
    return JSONResponse(
        accepted.model_dump(), status_code=202, headers={"Location": f"/runs/{run.id}"}
    )


@router.post("/runs/{run_id}/stream-ticket", status_code=201)
async def run_stream_ticket(run_id: UUID, ws: Access) -> StreamTicketResponse:
    """A ticket for `GET /runs/{id}/stream?ticket=...` on the Stream function (what an
    `EventSource` can send): that stream only, for a minute."""
    ticket = await ws.service.run_ticket(ws.principal, ws.workspace_id, run_id)
    return StreamTicketResponse.of(ticket)


@router.get("/workflows")
async def list_workflows(ws: Templates) -> ListResponse[WorkflowResponse]:
    """Named, versioned workflow templates, startable with POST /runs {template, input}."""
    await ws.service.check_member(ws.principal, ws.workspace_id)
    items = [WorkflowResponse.of(t) for t in ws.service.all()]
    return ListResponse(items=items, next_cursor=None)


@router.post("/runs", status_code=202, responses=MODEL_CALL)
async def start_run(
    body: CreateRunRequest, ws: Runs, templates: Templates, response: Response
) -> RunAccepted:
    if body.template is not None:
        run = await templates.service.start(
            ws.principal, ws.workspace_id, body.template, body.input, budget_usd=body.budget_usd
        )
    else:
        run = await ws.service.start(ws.principal, ws.workspace_id, body.to_workflow())
    response.headers["Location"] = f"/runs/{run.id}"
    return RunAccepted(run=RunResponse.of(run))


@router.get("/runs")
async def list_runs(
    ws: Runs,
    paging: Paging,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
) -> ListResponse[RunSummary]:
    page = await ws.service.list_runs(ws.principal, ws.workspace_id, paging, status, kind)
    return list_of(page, RunSummary.of)


@router.get("/runs/{run_id}")
async def get_run(run_id: UUID, ws: Runs) -> RunResponse:
    return RunResponse.of(await ws.service.get(ws.principal, ws.workspace_id, run_id))


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(run_id: UUID, ws: Runs) -> RunAccepted:
    run = await ws.service.cancel(ws.principal, ws.workspace_id, run_id)
    return RunAccepted(run=RunResponse.of(run))


@router.post("/runs/{run_id}/steps/{step_key}/retry", status_code=202)
async def retry_step(run_id: UUID, step_key: StepKey, ws: Runs) -> RunAccepted:
    run = await ws.service.retry_step(ws.principal, ws.workspace_id, run_id, step_key)
    return RunAccepted(run=RunResponse.of(run))


@router.get("/runs/{run_id}/events")
async def run_events(
    run_id: UUID,
    ws: Runs,
    after: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PER_PAGE)] = 200,
) -> EventsResponse:
    """Long-poll: with `wait`, the request is held until an event after `after` exists."""
    page = await ws.service.events(
        ws.principal, ws.workspace_id, run_id, after=after, wait_seconds=wait, limit=limit
    )
    return EventsResponse(
        items=[EventResponse.of(e) for e in page.items], next_after=page.next_after
    )


@router.get("/approvals")
async def list_approvals(
    ws: Runs, paging: Paging, status: GateStatus | None = None
) -> ListResponse[ApprovalResponse]:
    page = await ws.service.approvals(ws.principal, ws.workspace_id, status, paging)
    return list_of(page, ApprovalResponse.of)


@router.post("/approvals/{approval_id}")
async def decide_approval(approval_id: UUID, body: DecisionRequest, ws: Runs) -> ApprovalResponse:
    approval = await ws.service.decide(
        ws.principal, ws.workspace_id, approval_id, body.decision, body.comment
    )
    return ApprovalResponse.of(approval)


@router.get("/questions")
async def list_questions(
    ws: Runs, paging: Paging, status: GateStatus | None = None
) -> ListResponse[QuestionResponse]:
    page = await ws.service.questions(ws.principal, ws.workspace_id, status, paging)
    return list_of(page, QuestionResponse.of)


@router.post("/questions/{question_id}")
async def answer_question(question_id: UUID, body: AnswerRequest, ws: Runs) -> QuestionResponse:
    question = await ws.service.answer(ws.principal, ws.workspace_id, question_id, body.answer)
    return QuestionResponse.of(question)


def create(container: Container) -> FastAPI:
    """The Runs function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Runs", routers=[router])
    app.state.container = container
    return app


app = create(build())
