"""ToolsFunction: the deployment's tools, a workspace's tool settings (fetch allowlist,
per-run caps), per-agent switches and MCP servers (the HTTP API's tool routes)."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from guildstack.bootstrap import Container, build
from guildstack.domain.paging import MAX_LIMIT
from guildstack.http.app import create_app
from guildstack.http.auth import CurrentUser, Scoped, in_workspace, service
from guildstack.http.pagination import ListResponse, key_page

if TYPE_CHECKING:
    from guildstack.domain.tools import ToolSettings
    from guildstack.ports.tools import McpServer
    from guildstack.services.tool_settings import AgentTool, ToolSettingsService

Tools = Annotated["Scoped[ToolSettingsService]", Depends(in_workspace(lambda c: c.tool_settings))]
Catalog = Annotated["ToolSettingsService", Depends(service(lambda c: c.tool_settings))]
AgentCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")]
ToolName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,99}$")]
Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]
ServerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
ServerUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]

router = APIRouter()


class ToolResponse(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    requires_approval: bool
    cost_usd: float


class ToolSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fetch_hosts: Annotated[list[Host], Field(max_length=100)] = []
    max_calls_per_run: Annotated[int, Field(ge=0, le=1000)] = 30
    max_spend_per_run_usd: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(1)


class ToolSettingsResponse(BaseModel):
    fetch_hosts: list[str]
    max_calls_per_run: int
    max_spend_per_run_usd: float

    @classmethod
    def of(cls, settings: "ToolSettings") -> "ToolSettingsResponse":
        return cls(
            fetch_hosts=list(settings.fetch_hosts),
            max_calls_per_run=settings.max_calls_per_run,
            max_spend_per_run_usd=float(settings.max_spend_per_run_usd),
        )


class AgentToolResponse(BaseModel):
    name: str
    enabled: bool
    source: str

    @classmethod
    def of(cls, tool: "AgentTool") -> "AgentToolResponse":
        return cls(name=tool.name, enabled=tool.enabled, source=tool.source)


class SwitchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class McpServerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ServerName
    url: ServerUrl
    requires_approval: bool = True


class McpServerResponse(BaseModel):
    id: UUID
    name: str
    url: str
    requires_approval: bool
    created_at: datetime

    @classmethod
    def of(cls, server: "McpServer") -> "McpServerResponse":
        return cls(
            id=server.id,
            name=server.name,
            url=server.url,
            requires_approval=server.requires_approval,
            created_at=server.created_at,
        )


@router.get("/tools")
async def list_tools(
    _: CurrentUser, tools: Catalog, limit: Limit = MAX_LIMIT, cursor: Cursor = None
) -> ListResponse[ToolResponse]:
    items = [
        ToolResponse(
            name=spec.name,
            description=spec.description,
            parameters=dict(spec.parameters),
            requires_approval=spec.requires_approval,
            cost_usd=float(spec.cost_usd),
        )
        for spec in tools.catalog()
    ]
    return key_page(items, lambda t: t.name, limit, cursor)


@router.get("/tools/settings")
async def get_tool_settings(ws: Tools) -> ToolSettingsResponse:
    return ToolSettingsResponse.of(await ws.service.settings(ws.principal, ws.workspace_id))


@router.put("/tools/settings")
async def put_tool_settings(body: ToolSettingsBody, ws: Tools) -> ToolSettingsResponse:
    settings = await ws.service.save_settings(
        ws.principal,
        ws.workspace_id,
        fetch_hosts=body.fetch_hosts,
        max_calls_per_run=body.max_calls_per_run,
        max_spend_per_run_usd=body.max_spend_per_run_usd,
    )
    return ToolSettingsResponse.of(settings)


@router.get("/agents/{code}/tools")
async def get_agent_tools(code: AgentCode, ws: Tools) -> ListResponse[AgentToolResponse]:
    tools = await ws.service.agent_tools(ws.principal, ws.workspace_id, code)
    return ListResponse(items=[AgentToolResponse.of(t) for t in tools], next_cursor=None)


@router.put("/agents/{code}/tools/{tool}")
async def switch_agent_tool(
    code: AgentCode, tool: ToolName, body: SwitchBody, ws: Tools
) -> ListResponse[AgentToolResponse]:
    tools = await ws.service.switch(ws.principal, ws.workspace_id, code, tool, body.enabled)
    return ListResponse(items=[AgentToolResponse.of(t) for t in tools], next_cursor=None)


@router.get("/tools/mcp-servers")
async def list_mcp_servers(ws: Tools) -> ListResponse[McpServerResponse]:
    servers = await ws.service.mcp_servers(ws.principal, ws.workspace_id)
    return ListResponse(items=[McpServerResponse.of(s) for s in servers], next_cursor=None)


@router.post("/tools/mcp-servers", status_code=201)
async def add_mcp_server(body: McpServerBody, ws: Tools, response: Response) -> McpServerResponse:
    server = await ws.service.add_mcp_server(
        ws.principal, ws.workspace_id, body.name, body.url, body.requires_approval
    )
    response.headers["Location"] = f"/tools/mcp-servers/{server.id}"
    return McpServerResponse.of(server)


@router.delete("/tools/mcp-servers/{server_id}", status_code=204)
async def remove_mcp_server(server_id: UUID, ws: Tools) -> Response:
    await ws.service.remove_mcp_server(ws.principal, ws.workspace_id, server_id)
    return Response(status_code=204)


def create(container: Container) -> FastAPI:
    """The Tools function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Tools", routers=[router])
    app.state.container = container
    return app


app = create(build())
