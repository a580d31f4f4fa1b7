"""AgentsFunction: the agent registry, agent trials, audits and the usage ledger (the
HTTP API's Agents routes; durable runs are RunsFunction's, tools ToolsFunction's)."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Response

from functions.agents.audits import router as audits_router
from functions.agents.schemas import (
    AgentCode,
    AgentResponse,
    AgentTemplateResponse,
    AgentTrialRequest,
    AgentTrialResponse,
    CreateAgentRequest,
    UpdateAgentRequest,
    UsageResponse,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.paging import DEFAULT_LIMIT, MAX_LIMIT
from guildstack.domain.vocabulary import AgentStatus, GroupBy, Guild
from guildstack.http.app import create_app
from guildstack.http.auth import CurrentUser, Scoped, in_workspace, service
from guildstack.http.openapi import MODEL_CALL
from guildstack.http.pagination import ListResponse, key_page
from guildstack.observability import metrics

if TYPE_CHECKING:
    from guildstack.services.agent_trials import AgentTrials
    from guildstack.services.agents import AgentRegistry
    from guildstack.services.usage import UsageService

Agents = Annotated["Scoped[AgentRegistry]", Depends(in_workspace(lambda c: c.agents))]
Catalog = Annotated["AgentRegistry", Depends(service(lambda c: c.agents))]
Usage = Annotated["Scoped[UsageService]", Depends(in_workspace(lambda c: c.usage))]
Trials = Annotated["Scoped[AgentTrials]", Depends(in_workspace(lambda c: c.agent_trials))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]

router = APIRouter()
# `stats` in GET /agents and GET /agents/{code} cover this many days.
ACTIVITY_DAYS = 7
ACTIVITY_WINDOW = timedelta(days=ACTIVITY_DAYS)


def _order(agent: AgentResponse | AgentTemplateResponse) -> str:
    return f"{agent.guild}/{agent.code}"


@router.get("/agents")
async def list_agents(
    ws: Agents,
    guild: Guild | None = None,
    role: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    include_retired: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[AgentResponse]:
    agents, activity = await ws.service.list_with_activity(
        ws.principal,
        ws.workspace_id,
        ACTIVITY_WINDOW,
        guild=guild.value if guild else None,
        role=role,
        q=q,
        include_retired=include_retired,
    )
    # The page first, then the responses of its agents only.
    page = key_page(agents, lambda a: f"{a.spec.guild}/{a.code}", limit, cursor)
    items = [AgentResponse.of_agent(a, activity, ACTIVITY_DAYS) for a in page.items]
    return ListResponse(items=items, next_cursor=page.next_cursor)


@router.get("/agents/catalog")
async def agent_catalog(
    _: CurrentUser, agents: Catalog, limit: Limit = MAX_LIMIT, cursor: Cursor = None
) -> ListResponse[AgentTemplateResponse]:
    templates = [AgentTemplateResponse.of(spec) for spec in agents.catalog()]
    return key_page(templates, _order, limit, cursor)


@router.post("/agents", status_code=201)
async def create_agent(body: CreateAgentRequest, ws: Agents, response: Response) -> AgentResponse:
    agent = await ws.service.create(ws.principal, ws.workspace_id, body.to_spec())
    response.headers["Location"] = f"/agents/{agent.code}"
    metrics.add_metric(name="AgentsCreated", unit="Count", value=1)
    return AgentResponse.of_agent(agent)


@router.get("/agents/{code}")
async def get_agent(code: AgentCode, ws: Agents) -> AgentResponse:
    agent, activity = await ws.service.get_with_activity(
        ws.principal, ws.workspace_id, code, ACTIVITY_WINDOW
    )
    return AgentResponse.of_agent(agent, activity, ACTIVITY_DAYS)


@router.patch("/agents/{code}")
async def update_agent(code: AgentCode, body: UpdateAgentRequest, ws: Agents) -> AgentResponse:
    status = AgentStatus(body.status) if body.status else None
    agent = await ws.service.update(ws.principal, ws.workspace_id, code, body.changes(), status)
    return AgentResponse.of_agent(agent)


@router.post("/agents/{code}/test", responses=MODEL_CALL)
async def try_agent(code: AgentCode, body: AgentTrialRequest, ws: Trials) -> AgentTrialResponse:
    """One turn of the agent (with the workspace's overrides) against a sample message."""
    answer = await ws.service.test(ws.principal, ws.workspace_id, code, body.message)
    metrics.add_metric(name="AgentTests", unit="Count", value=1)
    return AgentTrialResponse(
        agent=code,
        text=answer.text,
        provider=answer.provider,
        model=answer.model,
        tier=answer.tier.value if answer.tier else None,
        input_tokens=answer.usage.input_tokens,
        output_tokens=answer.usage.output_tokens,
        cost_usd=float(answer.cost_usd),
        latency_ms=round(answer.latency_ms, 1),
    )


@router.delete("/agents/{code}", status_code=204)
async def retire_agent(code: AgentCode, ws: Agents) -> Response:
    await ws.service.retire(ws.principal, ws.workspace_id, code)
    return Response(status_code=204)


@router.get("/usage", response_model_by_alias=True)
async def usage(
    ws: Usage,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    group_by: GroupBy | None = None,
) -> UsageResponse:
    report = await ws.service.report(ws.principal, ws.workspace_id, from_, to, group_by)
    return UsageResponse.of(report, group_by.value if group_by else None)


def create(container: Container) -> FastAPI:
    """The Agents function's app around a composition root (tests pass their own)."""
    app = create_app(
        container.settings,
        title="Guildstack Agents",
        routers=[router, audits_router],
    )
    app.state.container = container
    return app


app = create(build())
