"""Routes of durable runs: invoke an agent, start and steer runs, read their events,
decide approvals and answer questions (API.md, Agents function)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from functions.agents.run_schemas import (
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
    StepKey,
)
from functions.agents.schemas import AgentCode
from guildstack.domain.paging import PageRequest
from guildstack.domain.vocabulary import GateStatus, Role, RunKind, RunStatus
from guildstack.http.auth import WorkspaceContext, workspace_member
from guildstack.http.pagination import ListResponse, encode_cursor, page_request

Member = Annotated[WorkspaceContext, Depends(workspace_member(Role.VIEWER))]
Operator = Annotated[WorkspaceContext, Depends(workspace_member(Role.OPERATOR))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post("/agents/{code}/invoke", response_model=None)
async def invoke_agent(
    code: AgentCode, body: InvokeRequest, ws: Operator
) -> InvokeResult | JSONResponse:
    """`wait=true`: the output once the run finishes (bounded); otherwise 202 and the run id."""
    run, finished = await ws.services.runs.invoke(
        ws.principal, ws.workspace_id, code, body.input, wait_seconds=25 if body.wait else 0
    )
    if finished:
        return InvokeResult.of(run)
    accepted = InvokeAccepted(run_id=str(run.id), status=run.status.value)
    return JSONResponse(
        accepted.model_dump(), status_code=202, headers={"Location": f"/runs/{run.id}"}
    )


@router.post("/runs", status_code=202)
async def start_run(body: CreateRunRequest, ws: Operator, response: Response) -> RunAccepted:
    run = await ws.services.runs.start(ws.principal, ws.workspace_id, body.to_workflow())
    response.headers["Location"] = f"/runs/{run.id}"
    return RunAccepted(run=RunResponse.of(run))


@router.get("/runs")
async def list_runs(
    ws: Member,
    paging: Paging,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
) -> ListResponse[RunResponse]:
    page = await ws.services.runs.list_runs(ws.principal, ws.workspace_id, paging, status, kind)
    return ListResponse(
        items=[RunResponse.of(r, with_steps=False) for r in page.items],
        next_cursor=encode_cursor(page.next_after),
    )


@router.get("/runs/{run_id}")
async def get_run(run_id: UUID, ws: Member) -> RunResponse:
    return RunResponse.of(await ws.services.runs.get(ws.principal, ws.workspace_id, run_id))


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(run_id: UUID, ws: Operator) -> RunAccepted:
    run = await ws.services.runs.cancel(ws.principal, ws.workspace_id, run_id)
    return RunAccepted(run=RunResponse.of(run))


@router.post("/runs/{run_id}/steps/{step_key}/retry", status_code=202)
async def retry_step(run_id: UUID, step_key: StepKey, ws: Operator) -> RunAccepted:
    await ws.services.runs.retry_step(ws.principal, ws.workspace_id, run_id, step_key)
    run = await ws.services.runs.get(ws.principal, ws.workspace_id, run_id)
    return RunAccepted(run=RunResponse.of(run))


@router.get("/runs/{run_id}/events")
async def run_events(
    run_id: UUID,
    ws: Member,
    after: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0, le=25)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> EventsResponse:
    """Long-poll: with `wait`, the request is held until an event after `after` exists."""
    page = await ws.services.runs.events(
        ws.principal, ws.workspace_id, run_id, after=after, wait_seconds=wait, limit=limit
    )
    return EventsResponse(
        items=[EventResponse.of(e) for e in page.items], next_after=page.next_after
    )


@router.get("/approvals")
async def list_approvals(
    ws: Member, paging: Paging, status: GateStatus | None = None
) -> ListResponse[ApprovalResponse]:
    page = await ws.services.runs.approvals(ws.principal, ws.workspace_id, status, paging)
    return ListResponse(
        items=[ApprovalResponse.of(a) for a in page.items],
        next_cursor=encode_cursor(page.next_after),
    )


@router.post("/approvals/{approval_id}")
async def decide_approval(
    approval_id: UUID, body: DecisionRequest, ws: Operator
) -> ApprovalResponse:
    approval = await ws.services.runs.decide(
        ws.principal, ws.workspace_id, approval_id, body.decision, body.comment
    )
    return ApprovalResponse.of(approval)


@router.get("/questions")
async def list_questions(
    ws: Member, paging: Paging, status: GateStatus | None = None
) -> ListResponse[QuestionResponse]:
    page = await ws.services.runs.questions(ws.principal, ws.workspace_id, status, paging)
    return ListResponse(
        items=[QuestionResponse.of(q) for q in page.items],
        next_cursor=encode_cursor(page.next_after),
    )


@router.post("/questions/{question_id}")
async def answer_question(question_id: UUID, body: AnswerRequest, ws: Operator) -> QuestionResponse:
    question = await ws.services.runs.answer(
        ws.principal, ws.workspace_id, question_id, body.answer
    )
    return QuestionResponse.of(question)
