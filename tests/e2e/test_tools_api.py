"""Agents that act, through the running stack: an agent searches memory, delegates to a
second agent and fetches an allowlisted page the test serves, every call and result on the
run's SSE stream; the tool settings, switches and MCP server routes by role and tenant."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up
from tests.e2e.sse import read_events

PAGE = (
    b"<html><head><title>Tea notes</title></head><body>"
    b"<p>Darjeeling is picked in <b>spring</b>.</p><script>steal()</script></body></html>"
)


@pytest.fixture
async def page_server() -> AsyncIterator[int]:
    """One small HTML page on 127.0.0.1 (any path)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n"
            + f"content-length: {len(PAGE)}\r\n\r\n".encode()
            + PAGE
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def steps_output(response: httpx.Response) -> str:
    return " ".join(s["output"] or "" for s in response.json()["steps"])


def directive(tool: str, arguments: dict[str, Any]) -> str:
    return f"@tool {tool} {json.dumps(arguments)}"


async def test_given_an_agent_with_tools_then_it_searches_delegates_and_fetches_on_the_stream(
    api: httpx.AsyncClient, team: Team, page_server: int
) -> None:
    admin, operator = team.headers("admin"), team.headers("operator")
    settings = await api.put("/tools/settings", json={"fetch_hosts": ["127.0.0.1"]}, headers=admin)
    assert settings.status_code == 200, settings.text
    for tool in ("agents.delegate", "web.fetch"):
        switched = await api.put(
            f"/agents/nicole_core/tools/{tool}", json={"enabled": True}, headers=admin
        )
        assert switched.status_code == 200, switched.text
    stored = await api.post(
        "/memory",
        json={"content": "Ada drinks Darjeeling tea every afternoon.", "collection": "core"},
        headers=operator,
    )
    assert stored.status_code == 201, stored.text
    url = f"http://127.0.0.1:{page_server}/tea"
    prompt = "\n".join(
        [
            "Prepare a tea briefing.",
            directive("memory.search", {"query": "what tea does Ada drink"}),
            directive("agents.delegate", {"agent": "seo_agent", "task": "Three tea keywords."}),
            directive("web.fetch", {"url": url}),
        ]
    )
    started = await api.post(
        "/runs",
        json={
            "kind": "single",
            "title": "Tea",
            "input": "Brief me on tea.",
            "budget_usd": 1,
            "nodes": [{"key": "A", "agent": "nicole_core", "prompt": prompt}],
        },
        headers=operator,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run"]["id"]

    events = await read_events(
        api,
        f"/runs/{run_id}/stream",
        team.headers("viewer"),
        until=lambda data: data.get("type") == "run.finished",
    )

    kinds = [e["event"] for e in events]
    assert kinds[-1] == "run.finished"
    assert events[-1]["data"]["payload"]["status"] == "succeeded"
    called = [e["data"]["payload"] for e in events if e["event"] == "tool.called"]
    results = [e["data"]["payload"] for e in events if e["event"] == "tool.result"]
    assert [c["tool"] for c in called] == ["memory.search", "agents.delegate", "web.fetch"]
    assert called[2]["arguments"] == {"url": url}
    assert all(r["ok"] for r in results), results
    # The creator's memories reach the model, not the events every member reads.
    assert results[0]["hits"] >= 1 and "Darjeeling" not in results[0]["result"]
    assert "Darjeeling" in steps_output(await api.get(f"/runs/{run_id}", headers=operator))
    assert results[1]["new_step"] == "A-d1"
    assert "Darjeeling is picked in spring." in results[2]["result"]
    assert "steal()" not in results[2]["result"]
    assert kinds.index("tool.called") < kinds.index("tool.result")
    added = [e["data"]["payload"] for e in events if e["event"] == "step.added"]
    assert added == [{"step": "A-d1", "agent": "seo_agent"}]
    succeeded = [e["data"]["payload"]["step"] for e in events if e["event"] == "step.succeeded"]
    assert succeeded == ["A", "A-d1"]

    run = (await api.get(f"/runs/{run_id}", headers=team.headers("viewer"))).json()
    steps = {s["key"]: s for s in run["steps"]}
    assert "Tool results: memory.search (ok)" in steps["A"]["output"]
    assert steps["A-d1"]["agent"] == "seo_agent"
    assert (results[1]["depth"], results[1]["budget_usd"]) == (1, 0.5)  # half the run's
    usage = await api.get("/usage", params={"group_by": "run"}, headers=team.headers("analyst"))
    groups = {g["key"]: g for g in usage.json()["groups"]}
    assert groups[run_id]["calls"] == 5  # A: four model rounds; A-d1: one


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_then_tool_settings_are_read_by_members_and_changed_by_admins(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    headers = team.headers(actor)

    read = await api.get("/tools/settings", headers=headers)
    changed = await api.put(
        "/tools/settings",
        json={"fetch_hosts": ["docs.example.com", "*.example.org"], "max_calls_per_run": 12},
        headers=headers,
    )
    switched = await api.put(
        "/agents/seo_agent/tools/web.fetch", json={"enabled": False}, headers=headers
    )
    agent_tools = await api.get("/agents/seo_agent/tools", headers=headers)

    assert read.status_code == expected(actor, 200, minimum="viewer")
    assert changed.status_code == expected(actor, 200, minimum="admin")
    assert switched.status_code == expected(actor, 200, minimum="admin")
    assert agent_tools.status_code == expected(actor, 200, minimum="viewer")
    if changed.status_code == 200:
        assert changed.json()["fetch_hosts"] == ["docs.example.com", "*.example.org"]
        assert changed.json()["max_calls_per_run"] == 12
        tools = {t["name"]: t for t in switched.json()["items"]}
        assert tools["web.fetch"] == {"name": "web.fetch", "enabled": False, "source": "switch"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fetch_hosts": ["not a host"]}, "fetch_hosts"),
        ({"fetch_hosts": ["*.com"]}, "fetch_hosts"),
        ({"max_calls_per_run": -1}, "max_calls_per_run"),
        ({"max_spend_per_run_usd": 5000}, "max_spend_per_run_usd"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_given_bad_tool_settings_then_422_names_the_field(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any], field: str
) -> None:
    response = await api.put("/tools/settings", json=body, headers=team.headers("admin"))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in json.dumps(response.json()["errors"])


async def test_given_unknown_tools_or_agents_then_switches_answer_404(
    api: httpx.AsyncClient, team: Team
) -> None:
    admin = team.headers("admin")

    unknown_tool = await api.put(
        "/agents/seo_agent/tools/shell.exec", json={"enabled": True}, headers=admin
    )
    unknown_agent = await api.put(
        "/agents/nobody/tools/web.fetch", json={"enabled": True}, headers=admin
    )
    bad_body = await api.put(
        "/agents/seo_agent/tools/web.fetch", json={"enabled": "yes please"}, headers=admin
    )

    assert unknown_tool.status_code == 404
    assert unknown_agent.status_code == 404
    assert bad_body.status_code == 422


async def test_given_mcp_servers_then_admins_register_and_remove_them(
    api: httpx.AsyncClient, team: Team, page_server: int
) -> None:
    admin = team.headers("admin")
    body = {"name": "docs", "url": f"http://127.0.0.1:{page_server}/mcp"}

    denied = await api.post("/tools/mcp-servers", json=body, headers=team.headers("operator"))
    created = await api.post("/tools/mcp-servers", json=body, headers=admin)
    again = await api.post("/tools/mcp-servers", json=body, headers=admin)
    private = await api.post(
        "/tools/mcp-servers", json={"name": "meta", "url": "http://169.254.169.254/"}, headers=admin
    )
    bad = await api.post(
        "/tools/mcp-servers", json={"name": "x", "url": "file:///etc"}, headers=admin
    )
    listed = await api.get("/tools/mcp-servers", headers=team.headers("viewer"))

    assert denied.status_code == 403
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["requires_approval"] is True
    assert created.headers["location"] == f"/tools/mcp-servers/{server['id']}"
    assert again.status_code == 409
    assert private.status_code == 422 and "non-public" in private.text
    assert bad.status_code == 422
    assert [s["name"] for s in listed.json()["items"]] == ["docs"]

    removed = await api.delete(f"/tools/mcp-servers/{server['id']}", headers=admin)
    gone = await api.delete(f"/tools/mcp-servers/{server['id']}", headers=admin)
    assert removed.status_code == 204
    assert gone.status_code == 404


async def test_given_another_tenant_then_tool_settings_and_servers_are_invisible(
    api: httpx.AsyncClient, team: Team
) -> None:
    stranger = await sign_up(api, "stranger")
    theirs = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    foreign = {**stranger.auth, "X-Workspace-Id": team.workspace_id}
    own = {**stranger.auth, "X-Workspace-Id": theirs.json()["id"]}
    await api.put("/tools/settings", json={"fetch_hosts": ["a.example.com"]}, headers=own)

    assert (await api.get("/tools/settings", headers=foreign)).status_code == 404
    assert (await api.get("/tools/mcp-servers", headers=foreign)).status_code == 404
    assert (
        await api.put("/tools/settings", json={"fetch_hosts": []}, headers=foreign)
    ).status_code == 404
    mine = await api.get("/tools/settings", headers=team.headers("viewer"))
    assert "a.example.com" not in mine.json()["fetch_hosts"]


async def test_given_the_tool_catalog_then_every_tool_has_a_schema(
    api: httpx.AsyncClient, team: Team
) -> None:
    listed = await api.get("/tools", headers=team.users["viewer"].auth)

    assert listed.status_code == 200
    names = [t["name"] for t in listed.json()["items"]]
    assert {"memory.search", "memory.remember", "user.ask", "agents.delegate", "web.fetch"} <= set(
        names
    )
    assert all(t["parameters"]["type"] == "object" for t in listed.json()["items"])
    assert (await api.get("/tools")).status_code == 401


async def test_given_memory_remember_then_the_memory_is_the_run_creators_alone(
    api: httpx.AsyncClient, team: Team
) -> None:
    fact = f"The launch code word is {uuid.uuid4().hex[:8]}."
    prompt = directive("memory.remember", {"content": fact, "collection": "business"})
    started = await api.post(
        "/runs",
        json={
            "kind": "single",
            "title": "Remember",
            "input": "Keep this in mind.",
            "nodes": [{"key": "A", "agent": "nicole_core", "prompt": prompt}],
        },
        headers=team.headers("operator"),
    )
    run_id = started.json()["run"]["id"]

    events = await read_events(
        api,
        f"/runs/{run_id}/stream",
        team.headers("viewer"),
        until=lambda data: data.get("type") == "run.finished",
    )

    (result,) = [e["data"]["payload"] for e in events if e["event"] == "tool.result"]
    assert result["ok"] is True and result["tool"] == "memory.remember"
    mine = await api.get("/memory", headers=team.headers("operator"))
    theirs = await api.get("/memory", headers=team.headers("admin"))
    stored = [m for m in mine.json()["items"] if m["content"] == fact]
    assert len(stored) == 1 and stored[0]["scope"] == "user"
    assert stored[0]["id"] == result["memory_id"]
    assert fact not in [m["content"] for m in theirs.json()["items"]]


@pytest.fixture
async def mcp_server() -> AsyncIterator[str]:
    """An MCP server (streamable HTTP) on 127.0.0.1 with one tool with side effects."""
    import socket

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server: MCPServer = MCPServer("shop")

    @server.tool(description="Place an order for an item.")
    def place_order(item: str, quantity: int) -> str:
        return f"Ordered {quantity} x {item}: order O-1."

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = server.streamable_http_app()
    runner = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(runner.serve(sockets=[sock]))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    runner.should_exit = True
    await task
    sock.close()


async def test_given_an_mcp_tool_with_side_effects_then_it_runs_only_once_approved(
    api: httpx.AsyncClient, team: Team, mcp_server: str
) -> None:
    admin, operator = team.headers("admin"), team.headers("operator")
    name = f"shop{uuid.uuid4().hex[:6]}"
    registered = await api.post(
        "/tools/mcp-servers", json={"name": name, "url": mcp_server}, headers=admin
    )
    assert registered.status_code == 201, registered.text
    tool = f"mcp.{name}.place_order"
    switched = await api.put(
        f"/agents/product_owner/tools/{tool}", json={"enabled": True}, headers=admin
    )
    assert switched.status_code == 200, switched.text
    arguments = {"item": "green tea", "quantity": 3}
    started = await api.post(
        "/runs",
        json={
            "kind": "single",
            "title": "Order",
            "input": "Restock the tea.",
            "nodes": [{"key": "A", "agent": "product_owner", "prompt": directive(tool, arguments)}],
        },
        headers=operator,
    )
    run_id = started.json()["run"]["id"]

    requested = await read_events(
        api,
        f"/runs/{run_id}/stream",
        team.headers("viewer"),
        until=lambda data: data.get("type") == "approval.requested",
    )
    waiting = (await api.get(f"/runs/{run_id}", headers=team.headers("viewer"))).json()
    gated = {s["key"]: s for s in waiting["steps"]}["A-t1"]
    assert gated["status"] == "waiting_approval"
    assert gated["tool_call"] == {"tool": tool, "arguments": arguments}  # what is approved
    result = [e["data"]["payload"] for e in requested if e["event"] == "tool.result"]
    assert result[0]["awaiting_approval"] is True and result[0]["new_step"] == "A-t1"

    approval_id = requested[-1]["data"]["payload"]["approval_id"]
    decided = await api.post(
        f"/approvals/{approval_id}", json={"decision": "approve"}, headers=operator
    )
    assert decided.status_code == 200, decided.text
    rest = await read_events(
        api,
        f"/runs/{run_id}/stream",
        {**team.headers("viewer"), "Last-Event-ID": str(requested[-1]["id"])},
        until=lambda data: data.get("type") == "run.finished",
    )

    assert rest[-1]["data"]["payload"]["status"] == "succeeded"
    called = [e["data"]["payload"] for e in rest if e["event"] == "tool.called"]
    assert called == [
        {"step": "A-t1", "attempt": 1, "call_id": "approved", "tool": tool,
         "arguments": arguments, "round": 1, "approved_call": True}
    ]  # fmt: skip
    final = (await api.get(f"/runs/{run_id}", headers=team.headers("viewer"))).json()
    assert {s["key"]: s for s in final["steps"]}["A-t1"]["output"] == (
        "Ordered 3 x green tea: order O-1."
    )
