"""`StreamableMcpClient`: MCP servers over streamable HTTP through the `mcp` SDK (imported on
first use). Every connection is preceded by the address check web.fetch uses (http or
https, public addresses only), so a registered server cannot point the platform at its own
network. One session per listing or call: servers are per workspace and calls are rare."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from guildstack.domain.tools import ToolRefused
from guildstack.ports.tools import RemoteTool

Check = Callable[[str], Awaitable[None]]


class StreamableMcpClient:
    def __init__(self, check: Check, *, timeout_seconds: float = 20.0) -> None:
        self._check = check
        self._timeout = timeout_seconds

    async def list_tools(self, url: str) -> list[RemoteTool]:
        from mcp import Client

        await self._check(url)
        async with asyncio.timeout(self._timeout):
            async with Client(url, read_timeout_seconds=self._timeout) as client:
                listed = await client.list_tools()
        return [
            RemoteTool(t.name, t.description or "", dict(t.input_schema or {}))
            for t in listed.tools
        ]

    async def call(self, url: str, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        from mcp import Client

        await self._check(url)
        try:
            async with asyncio.timeout(self._timeout):
                async with Client(url, read_timeout_seconds=self._timeout) as client:
                    result = await client.call_tool(name, dict(arguments))
        except TimeoutError as exc:
            raise ToolRefused(f"The MCP server did not answer within {self._timeout:g} s.") from exc
        parts = [
            getattr(block, "text", None) or f"[{getattr(block, 'type', 'content')}]"
            for block in result.content
        ]
        return "\n".join(parts), bool(result.is_error)
