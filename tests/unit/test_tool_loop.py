"""A step's tool loop over the in-memory unit of work: model → tools → model, the round
limit, the run's caps on calls and spend, questions, delegation (depth, fan-out, budget
share), approvals with the exact arguments, and the events and ledger rows it leaves."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guildstack.domain.errors import GuildstackError
from guildstack.domain.paging import PageRequest
from guildstack.domain.runs import Node
from guildstack.domain.tools import (
    ToolCall,
    ToolLimits,
    ToolSettings,
    ToolSpec,
    approved_call,
    delegation_of,
)
from guildstack.domain.vocabulary import Decision, GateStatus, StepStatus
from guildstack.ports.tools import ToolContext, ToolOutput
from tests.fakes.models import ScriptedProvider
from tests.unit.run_support import TOOLER, Stack, build

S = StepStatus
Script = list[str | GuildstackError | tuple[ToolCall, ...]]


@dataclass
class EchoTool:
    """web.fetch as a test double: answers with the URL it was given, at a price."""

    price: Decimal = Decimal(0)
    approval: bool = False
    seen: list[tuple[dict[str, Any], ToolContext]] = field(default_factory=list)

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            "web.fetch",
            "Fetch a page.",
            {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
            requires_approval=self.approval,
            cost_usd=self.price,
        )

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        self.seen.append((dict(arguments), context))
        return ToolOutput(f"page of {arguments['url']}")


def fetch(url: str, call_id: str = "c1") -> tuple[ToolCall, ...]:
    return (ToolCall(call_id, "web.fetch", {"url": url}),)


def stack_with(
    script: Script, tool: EchoTool | None = None, **kw: Any
) -> tuple[Stack, ScriptedProvider]:
    provider = ScriptedProvider("anthropic", script)
    return build(provider, tools=[tool or EchoTool()], **kw), provider


def events(stack: Stack, run_id: uuid.UUID, kind: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in stack.events(run_id, kind)]


async def test_given_a_tool_call_then_the_result_goes_back_to_the_model_and_it_answers() -> None:
    tool = EchoTool()
    stack, provider = stack_with([fetch("https://a.example/"), "The page says hi."], tool)
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    step = stack.step(run_id, "a")
    assert step.status is S.SUCCEEDED and step.output == "The page says hi."
    first, second = (request for _, request in provider.calls)
    assert [t.name for t in first.tools] == ["agents.delegate", "user.ask", "web.fetch"]
    assert second.messages[-2].tool_calls == fetch("https://a.example/")
    (result,) = second.messages[-1].tool_results
    assert (result.call_id, result.content, result.is_error) == (
        "c1",
        "page of https://a.example/",
        False,
    )
    assert tool.seen[0][1].actor is not None
    assert tool.seen[0][1].actor.user_id == stack.operator.user_id  # as the run's creator
    called, resulted = events(stack, run_id, "tool.called"), events(stack, run_id, "tool.result")
    assert called == [
        {"step": "a", "attempt": 1, "call_id": "c1", "tool": "web.fetch",
         "arguments": {"url": "https://a.example/"}, "round": 1}
    ]  # fmt: skip
    assert resulted[0]["ok"] is True and resulted[0]["result"] == "page of https://a.example/"
    # Both model calls are in the ledger; the step reports their sum.
    assert len(stack.world.usage) == 2 and stack.world.held == {}
    assert step.cost_usd == sum(r.completion.cost_usd for r in stack.world.usage)
    assert step.output_tokens == sum(r.completion.usage.output_tokens for r in stack.world.usage)


async def test_given_a_model_that_keeps_calling_tools_then_the_rounds_stop_at_the_limit() -> None:
    stack, provider = stack_with(
        [fetch("https://a.example/")], tool_limits=ToolLimits(max_iterations=2)
    )
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert stack.step(run_id, "a").status is S.SUCCEEDED
    assert stack.step(run_id, "a").output == "No tools."
    assert len(provider.calls) == 3
    last = provider.calls[-1][1]
    assert last.tool_choice == "none" and "Answer now" in last.messages[-1].content
    assert len(events(stack, run_id, "tool.called")) == 2


async def test_given_the_run_cap_on_calls_then_further_calls_are_refused() -> None:
    tool = EchoTool()
    script: Script = [fetch("https://a.example/", "c1"), fetch("https://b.example/", "c2"), "Done."]
    stack, provider = stack_with(script, tool)
    stack.world.tool_settings[stack.workspace] = ToolSettings(max_calls_per_run=1)
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert len(tool.seen) == 1
    refused = events(stack, run_id, "tool.result")[1]
    assert refused["ok"] is False and "cap of 1 tool calls" in refused["result"]
    assert provider.calls[2][1].messages[-1].tool_results[0].is_error


async def test_given_a_priced_tool_then_its_cost_is_in_the_ledger_and_the_spend_cap_holds() -> None:
    tool = EchoTool(price=Decimal("0.01"))
    script: Script = [fetch("https://a.example/", "c1"), fetch("https://b.example/", "c2"), "Done."]
    stack, _ = stack_with(script, tool)
    stack.world.tool_settings[stack.workspace] = ToolSettings(
        max_spend_per_run_usd=Decimal("0.015")
    )
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    priced = [r for r in stack.world.usage if r.completion.provider == "tool"]
    assert [(r.completion.model, r.completion.cost_usd) for r in priced] == [
        ("web.fetch", Decimal("0.01"))
    ]
    assert priced[0].context.run_id == run_id
    results = events(stack, run_id, "tool.result")
    assert results[0]["cost_usd"] == 0.01
    assert results[1]["ok"] is False and "cap of USD 0.015" in results[1]["result"]
    assert stack.world.held == {}


async def test_given_user_ask_then_the_step_waits_for_the_answer_and_runs_again() -> None:
    ask = (ToolCall("q1", "user.ask", {"question": "Which market first?"}),)
    stack, provider = stack_with([ask, "We start in France."])
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert stack.step(run_id, "a").status is S.WAITING_INPUT
    (question,) = stack.stored(run_id).questions.values()
    assert question.question == "Which market first?"
    assert events(stack, run_id, "tool.result")[0]["question"] == "Which market first?"

    await stack.runs.answer(stack.operator, stack.workspace, question.id, "France")
    await stack.drain()

    assert stack.step(run_id, "a").status is S.SUCCEEDED
    assert "France" in provider.calls[-1][1].messages[0].content


async def test_given_a_delegation_then_a_child_step_runs_with_a_budget_share() -> None:
    delegate = (ToolCall("d1", "agents.delegate", {"agent": "editor", "task": "Polish the copy."}),)
    stack, provider = stack_with([delegate, "Handed over.", "Polished."])
    run_id = await stack.start(Node("a", TOOLER.code), budget_usd=Decimal("2"))

    await stack.drain()

    child = stack.step(run_id, "a-d1")
    assert child.agent_code == "editor" and child.status is S.SUCCEEDED
    assert child.output == "Polished."
    delegation = delegation_of(child.prompt)
    assert delegation is not None
    assert (delegation.parent, delegation.depth, delegation.budget_usd) == ("a", 1, Decimal(1))
    assert child.prompt is not None and child.prompt.endswith("Polish the copy.")
    assert events(stack, run_id, "tool.result")[0]["new_step"] == "a-d1"
    assert [e.payload["step"] for e in stack.events(run_id, "step.added")] == ["a-d1"]
    assert "Polish the copy." in provider.calls[-1][1].messages[0].content


async def test_given_the_delegation_limits_then_depth_and_fan_out_are_refused() -> None:
    deep = (ToolCall("d1", "agents.delegate", {"agent": "editor", "task": "Go deeper."}),)
    stack, _ = stack_with([deep, "Could not."], tool_limits=ToolLimits(max_delegation_depth=1))
    header = "[delegated by step a · depth 1 · budget USD 0.5]\n"
    run_id = await stack.start(Node("b", TOOLER.code, prompt=header + "Do it."))

    await stack.drain()

    refused = events(stack, run_id, "tool.result")[0]
    assert refused["ok"] is False and "limited to 1 levels" in refused["result"]
    assert list(stack.stored(run_id).steps) == ["b"]

    many = tuple(
        ToolCall(f"d{i}", "agents.delegate", {"agent": "editor", "task": f"Part {i}."})
        for i in range(3)
    )
    stack, _ = stack_with([many, "Split."], tool_limits=ToolLimits(max_delegations_per_step=2))
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert sorted(stack.stored(run_id).steps) == ["a", "a-d1", "a-d2"]
    assert events(stack, run_id, "tool.result")[2]["ok"] is False


async def test_given_a_side_effect_tool_then_it_waits_for_approval_with_its_exact_arguments() -> (
    None
):
    tool = EchoTool(approval=True)
    stack, provider = stack_with(
        [fetch("https://shop.example/buy?item=7"), "Asked for approval."], tool
    )
    run_id = await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert tool.seen == []  # nothing happened yet
    assert stack.step(run_id, "a").status is S.SUCCEEDED
    gated = stack.step(run_id, "a-t1")
    assert gated.status is S.WAITING_APPROVAL
    call = approved_call(gated.prompt)
    assert call is not None
    assert (call.name, dict(call.arguments)) == (
        "web.fetch",
        {"url": "https://shop.example/buy?item=7"},
    )
    assert events(stack, run_id, "tool.result")[0]["awaiting_approval"] is True
    (approval,) = (
        await stack.runs.approvals(
            stack.operator, stack.workspace, GateStatus.PENDING, PageRequest()
        )
    ).items
    calls_before = len(provider.calls)

    await stack.runs.decide(stack.operator, stack.workspace, approval.id, Decision.APPROVE, None)
    await stack.drain()

    assert [args for args, _ in tool.seen] == [{"url": "https://shop.example/buy?item=7"}]
    assert len(provider.calls) == calls_before  # the approved call needs no model
    done = stack.step(run_id, "a-t1")
    assert done.status is S.SUCCEEDED and done.output == "page of https://shop.example/buy?item=7"
    assert events(stack, run_id, "tool.called")[-1]["approved_call"] is True


async def test_given_an_unknown_tool_or_bad_arguments_then_the_model_reads_an_error() -> None:
    script: Script = [
        (ToolCall("x", "shell.exec", {"cmd": "ls"}), ToolCall("y", "web.fetch", {"href": 1})),
        "Sorry.",
    ]
    tool = EchoTool()
    stack, provider = stack_with(script, tool)
    await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    unknown, invalid = provider.calls[1][1].messages[-1].tool_results
    assert unknown.is_error and "no tool 'shell.exec'" in unknown.content
    assert invalid.is_error and "Invalid arguments" in invalid.content
    assert tool.seen == []


async def test_given_a_workspace_switch_then_a_tool_is_off_for_that_agent() -> None:
    tool = EchoTool()
    stack, provider = stack_with([fetch("https://a.example/"), "Answered."], tool)
    stack.world.tool_settings[stack.workspace] = ToolSettings(
        switches={(TOOLER.code, "web.fetch"): False}
    )
    await stack.start(Node("a", TOOLER.code))

    await stack.drain()

    assert "web.fetch" not in [t.name for t in provider.calls[0][1].tools]
    assert tool.seen == []


async def test_given_a_switch_on_then_an_agent_without_tool_capabilities_gets_the_tool() -> None:
    tool = EchoTool()
    stack, provider = stack_with([fetch("https://a.example/"), "Fetched."], tool)
    stack.world.tool_settings[stack.workspace] = ToolSettings(
        switches={("writer", "web.fetch"): True}
    )
    before = len(stack.uow.transactions)
    run_id = await stack.start(Node("a", "writer"))

    await stack.drain()

    assert [t.name for t in provider.calls[0][1].tools] == ["web.fetch"]
    assert stack.step(run_id, "a").output == "Fetched." and len(tool.seen) == 1
    # The switches were read with the claim, not in a transaction of their own.
    assert stack.uow.transactions[before:][:2] == ["as user", "claim a step"]


def delegated(share: str, task: str = "Fetch it.") -> str:
    return f"[delegated by step a · depth 1 · budget USD {share}]\n{task}"


async def test_given_a_share_too_small_for_a_call_then_the_delegated_step_fails_unasked() -> None:
    stack, provider = stack_with([fetch("https://a.example/"), "Done."])
    run_id = await stack.start(Node("b", TOOLER.code, prompt=delegated("0.0000001")))

    await stack.drain()

    step = stack.step(run_id, "b")
    assert step.status is S.FAILED and step.error is not None
    assert step.error.startswith("BudgetExceeded") and provider.calls == []


async def test_given_a_share_spent_by_a_round_then_the_step_ends_with_what_the_tools_gave() -> None:
    # Calibrate: what the first round's call reserves (its worst case) with this prompt.
    probe, probe_provider = stack_with([fetch("https://a.example/"), "Done."])
    await probe.start(Node("b", TOOLER.code, prompt=delegated("5")))
    await probe.drain()
    first = probe_provider.calls[0][1]
    context = probe.world.usage[0].context
    estimate = (await probe.model.plan(first, context)).estimate_usd
    # Enough for that round, not for the next (whose prompt holds the tool's result).
    share = (estimate + Decimal("0.00005")).quantize(Decimal("0.0000001"))
    stack, provider = stack_with([fetch("https://a.example/"), "Done."])
    run_id = await stack.start(Node("b", TOOLER.code, prompt=delegated(str(share))))

    await stack.drain()

    step = stack.step(run_id, "b")
    assert step.status is S.SUCCEEDED, step.error
    assert step.output is not None and step.output.startswith(
        f"Stopped: this delegated task's budget share (USD {share}) is spent."
    )
    assert "page of https://a.example/" in step.output
    assert len(provider.calls) == 1
    spent = sum(r.completion.cost_usd for r in stack.world.usage)
    assert spent <= share
