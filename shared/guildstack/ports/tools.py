"""Ports of tools: a tool (built in, an external data API or an MCP server's), what a call
knows, the workspace's tool rows, the guarded page fetcher and MCP servers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from guildstack.domain.principal import Principal
from guildstack.domain.run_graph import NewStep
from guildstack.domain.tools import Delegation, ToolSettings, ToolSpec

__all__ = [
    "DataApi",
    "FetchedPage",
    "McpServer",
    "McpClient",
    "PageFetcher",
    "RemoteTool",
    "Tool",
    "ToolContext",
    "ToolOutput",
    "ToolRepository",
]


@dataclass(frozen=True)
class ToolContext:
    """Whom and what a call is for: the run's creator (tools act as them, under RLS), the
    step and agent calling, the workspace's tool settings and the step's delegation."""

    workspace_id: UUID
    run_id: UUID
    step_key: str
    agent_code: str
    actor: Principal | None
    settings: ToolSettings
    delegation: Delegation | None = None
    run_budget_usd: Decimal | None = None


@dataclass(frozen=True)
class ToolOutput:
    """What a call gave back (text for the model), what it cost, and what it asks of the
    step: a question for the user, or a step to add to the run."""

    content: str
    is_error: bool = False
    cost_usd: Decimal = Decimal(0)
    question: str | None = None
    new_step: NewStep | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    # The content is the run creator's own (their memories): the model reads it, the run's
    # events (which every member may read) do not carry it.
    private: bool = False


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        """Do the call. A refusal (bad arguments, host not allowed, quota spent) is an
        output with `is_error`, so the model reads why; other exceptions are the loop's."""
        ...


@dataclass(frozen=True)
class McpServer:
    id: UUID
    workspace_id: UUID
    name: str
    url: str
    requires_approval: bool
    created_at: datetime


class ToolRepository(Protocol):
    async def settings(self, workspace_id: UUID) -> ToolSettings:
        """The workspace's settings (defaults when it never set any) and switches."""
        ...

    async def save_settings(
        self,
        workspace_id: UUID,
        *,
        fetch_hosts: Sequence[str],
        max_calls_per_run: int,
        max_spend_per_run_usd: Decimal,
    ) -> None: ...

    async def switch(self, workspace_id: UUID, agent_code: str, tool: str, enabled: bool) -> None:
        """Turn one tool on or off for one agent of the workspace."""
        ...

    async def run_usage(self, workspace_id: UUID, run_id: UUID) -> tuple[int, Decimal]:
        """Tool calls made in the run so far, and what priced tools cost in it."""
        ...

    async def mcp_servers(self, workspace_id: UUID) -> list[McpServer]: ...

    async def add_mcp_server(
        self, workspace_id: UUID, name: str, url: str, requires_approval: bool
    ) -> McpServer:
        """`Conflict` when the workspace has a server of that name."""
        ...

    async def remove_mcp_server(self, workspace_id: UUID, server_id: UUID) -> bool: ...


@dataclass(frozen=True)
class FetchedPage:
    url: str
    status: int
    content_type: str
    text: str
    truncated: bool


class PageFetcher(Protocol):
    async def fetch(self, url: str, allowed: Callable[[str], bool]) -> FetchedPage:
        """GET `url`, following redirects only to hosts `allowed` accepts that resolve to
        public addresses; `ToolRefused` otherwise (and for oversized or slow answers)."""
        ...


class DataApi(Protocol):
    """An external data API (search, news, SEO data) a tool queries."""

    @property
    def name(self) -> str: ...

    async def query(self, arguments: Mapping[str, Any]) -> str:
        """The answer as text for the model; `ToolRefused` naming why it cannot (no key,
        the vendor refused the key, its own limit, ...)."""
        ...


@dataclass(frozen=True)
class RemoteTool:
    """A tool an MCP server offers, as the server names and describes it."""

    name: str
    description: str
    parameters: Mapping[str, Any]


class McpClient(Protocol):
    async def list_tools(self, url: str) -> list[RemoteTool]:
        """The server's tools."""
        ...

    async def call(self, url: str, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        """The call's text content and whether it is an error."""
        ...
