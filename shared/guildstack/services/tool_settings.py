"""`ToolSettingsService`: what tools a workspace has and how it governs them (the fetch
allowlist, per-run caps, per-agent switches, MCP servers). Members read; admins change."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import InvalidInput, NotFound
from guildstack.domain.principal import Principal
from guildstack.domain.tools import ToolRefused, ToolSettings, ToolSpec, granted
from guildstack.ports.tools import McpServer
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")
_IP = re.compile(r"^[0-9.]+$|^[0-9a-f:]+$")
_MCP_NAME = re.compile(r"^mcp\.[a-z][a-z0-9_-]{0,30}\.[a-z][a-z0-9_-]{0,30}$")


@dataclass(frozen=True)
class AgentTool:
    name: str
    enabled: bool
    # Why: "capability" (its catalog capabilities grant it), "switch" (the workspace's
    # switch decides), or "none".
    source: str


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


class ToolSettingsService:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        specs: Callable[[], Sequence[ToolSpec]],
        check_server_url: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._specs = specs
        self._check_url = check_server_url

    def catalog(self) -> list[ToolSpec]:
        return sorted(self._specs(), key=lambda s: s.name)

    async def settings(self, actor: Principal, workspace_id: UUID) -> ToolSettings:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.tools.settings(workspace_id)

    async def save_settings(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        fetch_hosts: Sequence[str],
        max_calls_per_run: int,
        max_spend_per_run_usd: Decimal,
    ) -> ToolSettings:
        hosts = list(dict.fromkeys(h.strip().lower().rstrip(".") for h in fetch_hosts))
        for host in hosts:
            wildcard_too_wide = host.startswith("*.") and "." not in host[2:]
            if not (_HOST.match(host) or _IP.match(host)) or wildcard_too_wide:
                raise _invalid("fetch_hosts", f"{host!r} is not a host name or '*.domain'")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            await tx.tools.save_settings(
                workspace_id,
                fetch_hosts=hosts,
                max_calls_per_run=max_calls_per_run,
                max_spend_per_run_usd=max_spend_per_run_usd,
            )
            return await tx.tools.settings(workspace_id)

    async def agent_tools(self, actor: Principal, workspace_id: UUID, code: str) -> list[AgentTool]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            agent = await self._agents.resolve(tx, workspace_id, code)
            settings = await tx.tools.settings(workspace_id)
        names = [s.name for s in self.catalog()]
        names += sorted({tool for (who, tool) in settings.switches if who == code} - set(names))
        capabilities = agent.spec.capabilities
        on = set(granted(capabilities, code, names, settings))
        by_capability = set(granted(capabilities, code, names, ToolSettings()))
        return [
            AgentTool(
                name,
                name in on,
                "switch"
                if (code, name) in settings.switches
                else "capability"
                if name in by_capability
                else "none",
            )
            for name in names
        ]

    async def switch(
        self, actor: Principal, workspace_id: UUID, code: str, tool: str, enabled: bool
    ) -> list[AgentTool]:
        known = {s.name for s in self._specs()}
        if tool not in known and not _MCP_NAME.match(tool):
            raise NotFound(f"No tool {tool!r}.")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            await self._agents.resolve(tx, workspace_id, code)
            await tx.tools.switch(workspace_id, code, tool, enabled)
        return await self.agent_tools(actor, workspace_id, code)

    async def mcp_servers(self, actor: Principal, workspace_id: UUID) -> list[McpServer]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.tools.mcp_servers(workspace_id)

    async def add_mcp_server(
        self, actor: Principal, workspace_id: UUID, name: str, url: str, requires_approval: bool
    ) -> McpServer:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
        if self._check_url is not None:
            try:
                await self._check_url(url)
            except ToolRefused as exc:
                raise _invalid("url", f"The server cannot be reached safely: {exc}") from exc
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            return await tx.tools.add_mcp_server(workspace_id, name, url, requires_approval)

    async def remove_mcp_server(
        self, actor: Principal, workspace_id: UUID, server_id: UUID
    ) -> None:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            if not await tx.tools.remove_mcp_server(workspace_id, server_id):
                raise NotFound("No such MCP server in this workspace.")
