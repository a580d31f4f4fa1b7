"""The tool loop on the real engine: Postgres (RLS on), moto's SQS, the real Anthropic SDK
over its wire format. A step's agent searches the run creator's memories through a tool
call streamed in pieces, gets the result back as a delimited `tool_result`, and answers;
events, usage rows and the step's cost agree."""

from __future__ import annotations

from typing import Any

from guildstack.adapters.models.anthropic import AnthropicProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.runs import Node, RunKind, RunStatus, Workflow
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport
from tests.fixtures.engine import Rig


async def test_given_a_streamed_tool_call_then_the_step_runs_the_tool_and_answers_with_it(
    rig_factory: Any, database: PostgresDatabase
) -> None:
    transport = ScriptedTransport(
        [
            wire.anthropic_tool_stream(
                [("toolu_1", "memory__search", ['{"query": "where ', 'to launch"}'])]
            ),
            wire.anthropic_stream(["Start ", "in Lisbon."], output_tokens=6),
        ]
    )
    rig: Rig = await rig_factory(
        providers={"anthropic": AnthropicProvider("k", http_client=transport.client())}
    )
    await rig.api.memory.remember(
        rig.actor,
        rig.workspace_id,
        content="Ada wants every launch to start in Lisbon.",
        collection=Collection.USER_PREFERENCES,
        scope=MemoryScope.USER,
    )
    run = await rig.api.runs.start(
        rig.actor,
        rig.workspace_id,
        Workflow(RunKind.SINGLE, "plan", "Where do we launch?", (Node("main", "nicole_core"),)),
    )
    done = await rig.finished(run.id)

    assert done.status is RunStatus.SUCCEEDED
    assert done.steps[0].output == "Start in Lisbon."
    events = await rig.events(run.id)
    called = [p for t, p in events if t == "tool.called"]
    results = [p for t, p in events if t == "tool.result"]
    assert [(c["tool"], c["arguments"]) for c in called] == [
        ("memory.search", {"query": "where to launch"})
    ]
    assert results[0]["ok"] is True and results[0]["hits"] == 1
    assert "Lisbon" not in results[0]["result"]  # the creator's memory stays out of events
    first, second = transport.bodies()
    assert {t["name"] for t in first["tools"]} == {"memory__search", "memory__remember"}
    tool_use, tool_result = second["messages"][-2], second["messages"][-1]
    assert tool_use["content"][0]["type"] == "tool_use"
    assert tool_result["content"][0]["tool_use_id"] == "toolu_1"
    assert tool_result["content"][0]["content"].startswith("<<<tool-result name=memory.search")
    assert "Ada wants every launch to start in Lisbon." in tool_result["content"][0]["content"]
    async with database.service_transaction("read usage") as conn:
        cur = await conn.execute(
            "select provider, cost_usd from public.usage where run_id = %s", (run.id,)
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            "select count(*) as n from public.budget_reservations where workspace_id = %s",
            (rig.workspace_id,),
        )
        held = await cur.fetchone()
    assert [r["provider"] for r in rows] == ["anthropic", "anthropic"]
    assert done.steps[0].cost_usd == sum(r["cost_usd"] for r in rows)
    assert held is not None and held["n"] == 0
