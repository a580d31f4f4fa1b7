"""A workspace's MCP servers' tools as registry tools: named `mcp.<server>.<tool>`, under
the same switches, caps and approval rule as the others (a server registered with
`requires_approval` makes each of its calls wait for a person)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guildstack.domain.tools import ToolSpec
from guildstack.observability import logger
from guildstack.ports.tools import McpClient, McpServer, Tool, ToolContext, ToolOutput

_UNSAFE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class McpTool:
    spec: ToolSpec
    client: McpClient
    url: str
    remote_name: str

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        text, is_error = await self.client.call(self.url, self.remote_name, arguments)
        return ToolOutput(text, is_error=is_error, details={"server": self.url})


def local_name(server: str, tool: str) -> str:
    slug = _UNSAFE.sub("_", tool.lower()).strip("_")[:30] or "tool"
    if not slug[0].isalpha():
        slug = f"t{slug}"[:30]
    return f"mcp.{server}.{slug}"


async def mcp_tools(client: McpClient, servers: Sequence[McpServer]) -> list[Tool]:
    """The tools of every server that answers; one that does not is left out (logged)."""
    tools: list[Tool] = []
    for server in servers:
        try:
            specs = await client.list_tools(server.url)
        except Exception as exc:  # noqa: BLE001 - a server down costs its tools only
            logger.warning(
                "MCP server unavailable", extra={"server": server.name, "error": repr(exc)}
            )
            continue
        for spec in specs:
            parameters = dict(spec.parameters) or {"type": "object", "properties": {}}
            local = ToolSpec(
                local_name(server.name, spec.name),
                spec.description[:1000] or f"{spec.name} (MCP server {server.name})",
                parameters,
                requires_approval=server.requires_approval,
            )
            tools.append(McpTool(local, client, server.url, spec.name))
    return tools
