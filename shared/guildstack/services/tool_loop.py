"""A step's tool loop: model → tools → model, up to the agent's rounds, within the step's
budget and the run's caps. Every call and result is an event of the run (`tool.called`,
`tool.result`); each round's model call is settled when the round ends; the last call is
the step's answer (settled with its outcome by the engine).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.models import ChatMessage, Completion, ModelRequest, Usage
from guildstack.domain.principal import Principal
from guildstack.domain.run_graph import NewEvent, NewStep
from guildstack.domain.runs import QUESTION_PREFIX
from guildstack.domain.tools import (
    ToolCall,
    ToolResult,
    approved_call,
    delegation_of,
)
from guildstack.domain.vocabulary import EventType
from guildstack.ports.tools import ToolContext, ToolOutput
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.tools import TOOL_PROVIDER, Toolbox

if TYPE_CHECKING:
    from guildstack.services.engine import Claim

# A model call of the step, at most costing the cap (None: the step's budgets only).
Stream = Callable[[ModelRequest, Decimal | None], Awaitable[tuple[Completion, str]]]
SettleNow = Callable[["Claim", Completion, str], Awaitable[None]]

ANSWER_NOW = (
    "You have used the tool calls this step allows. Answer now with what you have, "
    "without calling tools."
)


@dataclass(frozen=True)
class ToolRounds:
    """What a step's earlier rounds left: their tokens and cost (already settled) and the
    steps to add to the run when the step succeeds (delegations, approved calls)."""

    usage: Usage = Usage()
    cost_usd: Decimal = Decimal(0)
    then: tuple[NewStep, ...] = field(default=())


class StepTools:
    def __init__(self, toolbox: Toolbox, uow: UnitOfWork) -> None:
        self._toolbox = toolbox
        self._uow = uow

    def may_use(self, claim: Claim) -> bool:
        """Whether the step may call tools: its agent has a tool capability, or the step
        is a delegation or an approved call."""
        prompt = claim.inputs.prompt
        return (
            self._toolbox.could_grant(claim.agent.capabilities)
            or self._toolbox.switched_on(claim.workspace_id, claim.agent.code)
            or delegation_of(prompt) is not None
            or approved_call(prompt) is not None
        )

    async def warm(self, tx: Tx, workspace_id: UUID) -> None:
        """Within a claim's transaction: the workspace's switches, if the cache is cold."""
        await self._toolbox.warm(tx, workspace_id)

    async def run(
        self, claim: Claim, request: ModelRequest, stream: Stream, settle_now: SettleNow
    ) -> tuple[Completion, str, ToolRounds]:
        agent = claim.agent
        tools, settings, made = await self._toolbox.for_step(
            claim.workspace_id, claim.run_id, agent.code, agent.capabilities
        )
        by_name = {t.spec.name: t for t in tools}
        context = ToolContext(
            workspace_id=claim.workspace_id,
            run_id=claim.run_id,
            step_key=claim.step_key,
            agent_code=agent.code,
            actor=_creator(claim),
            settings=settings,
            delegation=delegation_of(claim.inputs.prompt),
            run_budget_usd=claim.run_budget_usd,
        )
        approved = approved_call(claim.inputs.prompt)
        if approved is not None:
            return await self._approved(claim, approved, by_name, context)
        share = context.delegation.budget_usd if context.delegation is not None else None
        if not tools:
            completion, tail = await stream(request, share)
            return completion, tail, ToolRounds()
        limits = self._toolbox.limits
        request = replace(request, tools=tuple(t.spec for t in tools))
        messages = list(request.messages)
        rounds = ToolRounds()
        delegated = 0
        for round_number in range(limits.max_iterations + 1):
            cap = share - rounds.cost_usd if share is not None else None
            last = round_number == limits.max_iterations
            asked = replace(
                request,
                messages=tuple(messages) + ((ChatMessage("user", ANSWER_NOW),) if last else ()),
                tool_choice="none" if last else "auto",
            )
            try:
                completion, tail = await stream(asked, cap)
            except BudgetExceeded:
                if round_number == 0 or share is None:
                    raise
                # The share cannot pay for another round: the step ends with what it has.
                return _share_spent(share, messages), "", rounds
            if not completion.tool_calls or last:
                return replace(completion, tool_calls=()), tail, rounds
            await settle_now(claim, completion, tail)
            rounds = replace(
                rounds,
                usage=rounds.usage + completion.usage,
                cost_usd=rounds.cost_usd + completion.cost_usd,
            )
            results: list[ToolResult] = []
            for call in completion.tool_calls:
                await self._event(claim, EventType.TOOL_CALLED, _called(claim, call, round_number))
                called = await self._toolbox.call(by_name.get(call.name), call, context, made=made)
                output = called.output
                made = (made[0] + 1, made[1] + output.cost_usd)
                new_step = output.new_step
                if new_step is not None:
                    if (
                        not called.awaiting_approval
                        and delegated >= limits.max_delegations_per_step
                    ):
                        output = ToolOutput(
                            f"A step may delegate at most {limits.max_delegations_per_step} times.",
                            is_error=True,
                        )
                    else:
                        delegated += 0 if called.awaiting_approval else 1
                        suffix = "t" if called.awaiting_approval else "d"
                        key = f"{claim.step_key[:48]}-{suffix}{len(rounds.then) + 1}"
                        step = replace(new_step, key=key)
                        rounds = replace(rounds, then=(*rounds.then, step))
                        output = replace(output, details={**output.details, "new_step": key})
                await self._event(
                    claim,
                    EventType.TOOL_RESULT,
                    _resulted(claim, call, output, called.awaiting_approval),
                )
                if output.question is not None:
                    return _question(completion, output.question), "", rounds
                results.append(ToolResult(call.id, call.name, output.content, output.is_error))
            messages += [
                ChatMessage("assistant", completion.text, tool_calls=completion.tool_calls),
                ChatMessage("user", "", tool_results=tuple(results)),
            ]
        raise AssertionError("unreachable: the last round returns")  # pragma: no cover

    async def _approved(
        self, claim: Claim, call: ToolCall, by_name: Mapping[str, Any], context: ToolContext
    ) -> tuple[Completion, str, ToolRounds]:
        """A step made to carry out a call a person approved: the call, no model."""
        await self._event(claim, EventType.TOOL_CALLED, _called(claim, call, 0, approved=True))
        tool = by_name.get(call.name)
        if tool is None:
            output = ToolOutput(f"The agent may no longer call {call.name!r}.", is_error=True)
        else:
            output = await self._toolbox.run(tool, call, context)
        await self._event(claim, EventType.TOOL_RESULT, _resulted(claim, call, output, False))
        completion = Completion(
            text=output.content,
            usage=Usage(),
            provider=TOOL_PROVIDER,
            model=call.name,
            latency_ms=0.0,
        )
        return completion, "", ToolRounds()

    async def _event(self, claim: Claim, kind: EventType, payload: dict[str, Any]) -> None:
        async with self._uow.system("a tool event") as tx:
            await tx.runs.append_step_events(
                claim.workspace_id,
                claim.run_id,
                claim.step_key,
                claim.attempt,
                [NewEvent(kind, payload)],
            )


def _called(
    claim: Claim, call: ToolCall, round_number: int, *, approved: bool = False
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "step": claim.step_key,
        "attempt": claim.attempt,
        "call_id": call.id,
        "tool": call.name,
        "arguments": dict(call.arguments),
        "round": round_number + 1,
    }
    if approved:
        payload["approved_call"] = True
    return payload


def _resulted(claim: Claim, call: ToolCall, output: ToolOutput, awaiting: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "step": claim.step_key,
        "attempt": claim.attempt,
        "call_id": call.id,
        "tool": call.name,
        "ok": not output.is_error,
        "result": (
            f"({len(output.content)} characters for the run's creator only)"
            if output.private
            else output.content[:2000]
        ),
        "cost_usd": float(output.cost_usd),
        **output.details,
    }
    if awaiting:
        payload["awaiting_approval"] = True
    if output.question is not None:
        payload["question"] = output.question
    return payload


def _share_spent(share: Decimal, messages: list[ChatMessage]) -> Completion:
    results = [r for m in messages for r in m.tool_results]
    found = "\n".join(f"- {r.name}: {r.content[:500]}" for r in results)
    return Completion(
        text=f"Stopped: this delegated task's budget share (USD {share}) is spent. "
        f"What the tools returned:\n{found}",
        usage=Usage(),
        provider=TOOL_PROVIDER,
        model="budget-share",
        latency_ms=0.0,
    )


def _question(completion: Completion, question: str) -> Completion:
    """The step's answer when a tool asked the user: a question, as `QUESTION:` replies are
    (its call's usage is settled already)."""
    return Completion(
        text=f"{QUESTION_PREFIX} {question}",
        usage=Usage(),
        provider=completion.provider,
        model=completion.model,
        latency_ms=0.0,
    )


def _creator(claim: Claim) -> Principal | None:
    if claim.created_by is None:
        return None
    claims = {"sub": str(claim.created_by), "role": "authenticated"}
    return Principal(user_id=claim.created_by, email=None, claims=claims)
