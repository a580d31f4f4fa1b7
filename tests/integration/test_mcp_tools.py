"""MCP tools end to end against a real MCP server the test starts (the `mcp` package over
streamable HTTP): its tools join a workspace's registry under their own names, are called
with the same rules as built-ins (schema, approval, events), and a server on a private
address is refused."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from guildstack.adapters.mcp_client import StreamableMcpClient
from guildstack.adapters.web_fetch import GuardedFetcher
from guildstack.domain.tools import ToolCall, ToolRefused, ToolSettings
from guildstack.ports.tools import McpServer, ToolContext
from guildstack.services.tools import Toolbox
from tests.fakes.uow import InMemoryUnitOfWork

pytestmark = pytest.mark.integration
ZERO = Decimal(0)


def shop() -> MCPServer:
    server: MCPServer = MCPServer("shop")

    @server.tool(description="The shipping status of an order.")
    def order_status(order_id: str) -> str:
        return f"Order {order_id} shipped on May 4."

    @server.tool(description="Always fails.")
    def broken() -> str:
        raise ValueError("the warehouse is offline")

    return server


@pytest.fixture
async def mcp_url() -> AsyncIterator[str]:
    """The shop's MCP server on 127.0.0.1, listening before the test starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(shop().streamable_http_app(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    await task
    sock.close()


def client() -> StreamableMcpClient:
    return StreamableMcpClient(GuardedFetcher(allowed_networks=["127.0.0.1/32"]).check)


async def test_given_an_mcp_server_then_its_tools_are_listed_with_their_schemas(
    mcp_url: str,
) -> None:
    tools = {t.name: t for t in await client().list_tools(mcp_url)}

    assert set(tools) == {"order_status", "broken"}
    assert tools["order_status"].description == "The shipping status of an order."
    assert tools["order_status"].parameters["properties"]["order_id"]["type"] == "string"
    assert tools["order_status"].parameters["required"] == ["order_id"]


async def test_given_a_workspace_server_then_an_agent_calls_its_tool_through_the_registry(
    mcp_url: str,
) -> None:
    uow = InMemoryUnitOfWork()
    workspace = uuid.uuid4()
    for approval in (False, True):
        name = "shop" if not approval else "shop2"
        uow.world.mcp_servers[uuid.uuid4()] = McpServer(
            uuid.uuid4(), workspace, name, mcp_url, approval, datetime.now(UTC)
        )
    toolbox = Toolbox([], uow=uow, mcp=client())

    tools, _, _ = await toolbox.for_step(workspace, uuid.uuid4(), "seo_agent", ["mcp"])
    by_name = {t.spec.name: t for t in tools}
    context = ToolContext(workspace, uuid.uuid4(), "a", "seo_agent", None, ToolSettings())

    assert sorted(by_name) == [
        "mcp.shop.broken",
        "mcp.shop.order_status",
        "mcp.shop2.broken",
        "mcp.shop2.order_status",
    ]
    call = ToolCall("c1", "mcp.shop.order_status", {"order_id": "A-17"})
    done = await toolbox.call(by_name[call.name], call, context, made=(0, ZERO))
    assert not done.output.is_error
    assert done.output.content == "Order A-17 shipped on May 4."

    failing = ToolCall("c2", "mcp.shop.broken", {})
    failed = await toolbox.call(by_name[failing.name], failing, context, made=(1, ZERO))
    assert failed.output.is_error and "Error executing tool broken" in failed.output.content

    invalid = ToolCall("c3", "mcp.shop.order_status", {"order": 1})
    refused = await toolbox.call(by_name[invalid.name], invalid, context, made=(2, ZERO))
    assert refused.output.is_error and "Invalid arguments" in refused.output.content

    gated = ToolCall("c4", "mcp.shop2.order_status", {"order_id": "B-2"})
    waiting = await toolbox.call(by_name[gated.name], gated, context, made=(3, ZERO))
    assert waiting.awaiting_approval and waiting.output.new_step is not None
    assert '"order_id": "B-2"' in (waiting.output.new_step.prompt or "")

    # Without the mcp capability (and no switch) the servers are not even asked.
    assert (await toolbox.for_step(workspace, uuid.uuid4(), "seo_agent", ["seo"]))[0] == []


async def test_given_a_server_on_a_private_address_then_the_client_refuses_it(
    mcp_url: str,
) -> None:
    guarded = StreamableMcpClient(GuardedFetcher().check)

    with pytest.raises(ToolRefused, match="non-public address"):
        await guarded.list_tools(mcp_url)
