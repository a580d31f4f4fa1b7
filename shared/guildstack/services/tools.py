"""The tool registry and the built-in tools.

`Toolbox` knows every tool the deployment has (built-ins, external data adapters) and a
workspace's MCP servers' tools; `for_step` gives the tools one agent of one workspace may
call (its capabilities, the workspace's switches) and `call` runs one call with its guard
rails: the run's caps on calls and spend, argument checks, pricing into the ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.errors import GuildstackError
from guildstack.domain.jsonschema import validate
from guildstack.domain.memory import Collection, MemoryScope
from guildstack.domain.models import CallContext, Completion, Usage
from guildstack.domain.principal import Principal
from guildstack.domain.run_graph import NewStep
from guildstack.domain.tools import (
    CAPABILITY_TOOLS,
    MAX_TOOL_RESULT_CHARS,
    MCP_CAPABILITY,
    Delegation,
    ToolLimits,
    ToolRefused,
    ToolSettings,
    ToolSpec,
    approval_prompt,
    granted,
)
from guildstack.domain.tools import ToolCall as Call
from guildstack.domain.usage import UsageRecord
from guildstack.observability import logger, metrics
from guildstack.ports.ratelimit import RateLimiter
from guildstack.ports.tools import DataApi, McpClient, PageFetcher, Tool, ToolContext, ToolOutput
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.agents import AgentRegistry
from guildstack.services.memory import MemoryService

TOOL_PROVIDER = "tool"  # the usage ledger's provider for priced tool calls


@dataclass(frozen=True)
class SimpleTool:
    """A tool made of a spec and a function."""

    spec: ToolSpec
    function: Callable[[Mapping[str, Any], ToolContext], Awaitable[ToolOutput]]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return await self.function(arguments, context)


def _object(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def memory_tools(memory: MemoryService) -> list[Tool]:
    """`memory.search` and `memory.remember`, acting as the run's creator (RLS applies: the
    tool sees and writes what that person may)."""

    async def search(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        actor = _actor(context)
        hits = await memory.search(
            actor,
            context.workspace_id,
            str(arguments["query"]),
            limit=int(arguments.get("limit", 5)),
        )
        found = [
            {
                "content": h.memory.content,
                "collection": str(h.memory.collection),
                "score": round(h.score, 3),
            }
            for h in hits
        ]
        return ToolOutput(
            json.dumps(found, ensure_ascii=False), details={"hits": len(found)}, private=True
        )

    async def remember(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        actor = _actor(context)
        stored = await memory.remember(
            actor,
            context.workspace_id,
            content=str(arguments["content"]),
            collection=Collection(arguments.get("collection", Collection.CORE.value)),
            scope=MemoryScope.USER,
            metadata={"source": "tool", "run_id": str(context.run_id), "step": context.step_key},
        )
        return ToolOutput(f"Remembered (id {stored.id}).", details={"memory_id": str(stored.id)})

    collections = [c.value for c in Collection]
    return [
        SimpleTool(
            ToolSpec(
                "memory.search",
                "Search what the user and the workspace remember. Returns the best matches.",
                _object(
                    {
                        "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 20},
                    },
                    ["query"],
                ),
            ),
            search,
        ),
        SimpleTool(
            ToolSpec(
                "memory.remember",
                "Store a fact in the user's own memories for later.",
                _object(
                    {
                        "content": {"type": "string", "minLength": 1, "maxLength": 4000},
                        "collection": {"type": "string", "enum": collections},
                    },
                    ["content"],
                ),
            ),
            remember,
        ),
    ]


def ask_tool() -> Tool:
    """`user.ask`: the step pauses with the question, as a `QUESTION:` reply does."""

    async def ask(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        question = str(arguments["question"]).strip()
        return ToolOutput("The question was put to the user.", question=question)

    return SimpleTool(
        ToolSpec(
            "user.ask",
            "Ask the user a question when you cannot go on without their answer; the step "
            "pauses and resumes with the answer.",
            _object(
                {"question": {"type": "string", "minLength": 1, "maxLength": 2000}}, ["question"]
            ),
        ),
        ask,
    )


def delegate_tool(uow: UnitOfWork, agents: AgentRegistry, limits: ToolLimits) -> Tool:
    """`agents.delegate`: a subtask for another agent, as a new step of the same run (after
    this one) with a share of the budget; depth is limited."""

    async def delegate(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        code = str(arguments["agent"])
        depth = (context.delegation.depth if context.delegation else 0) + 1
        if depth > limits.max_delegation_depth:
            raise ToolRefused(
                f"Delegation is limited to {limits.max_delegation_depth} levels; "
                "do the task yourself."
            )
        if code == context.agent_code:
            raise ToolRefused("An agent cannot delegate to itself.")
        async with uow.system("check a delegation's agent") as tx:
            try:
                await agents.resolve(tx, context.workspace_id, code)
            except GuildstackError as exc:
                raise ToolRefused(f"No agent {code!r} in this workspace.") from exc
        share = _share(arguments.get("budget_usd"), context)
        step = NewStep(
            key=context.step_key,  # the loop names it (unique within the step)
            agent_code=code,
            prompt=Delegation(context.step_key, depth, share).header() + str(arguments["task"]),
        )
        return ToolOutput(
            f"Delegated to {code}; its answer will be a step of this run.",
            new_step=step,
            details={"agent": code, "depth": depth, "budget_usd": float(share)},
        )

    return SimpleTool(
        ToolSpec(
            "agents.delegate",
            "Hand a subtask to another agent of the workspace. It runs as a step of this run "
            "after yours, with part of the budget.",
            _object(
                {
                    "agent": {"type": "string", "minLength": 1, "maxLength": 64},
                    "task": {"type": "string", "minLength": 1, "maxLength": 8000},
                    "budget_usd": {"type": "number", "minimum": 0},
                },
                ["agent", "task"],
            ),
        ),
        delegate,
    )


def _share(asked: Any, context: ToolContext) -> Decimal:
    """A delegated step's budget: what was asked, at most half of what the delegating step
    had (its own share, or the run's budget), and 0.10 USD when nothing bounds it."""
    ceiling = (
        context.delegation.budget_usd
        if context.delegation is not None
        else context.run_budget_usd
        if context.run_budget_usd is not None
        else Decimal("0.20")
    ) / 2
    if asked is None:
        return ceiling
    return min(Decimal(str(asked)), ceiling)


def fetch_tool(fetcher: PageFetcher) -> Tool:
    """`web.fetch`: GET a page of an allowlisted host, as text."""

    async def fetch(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        if not context.settings.fetch_hosts:
            raise ToolRefused("This workspace allows web.fetch no hosts (tool settings).")
        page = await fetcher.fetch(str(arguments["url"]), context.settings.host_allowed)
        note = " (truncated)" if page.truncated else ""
        return ToolOutput(
            f"{page.url} answered {page.status} ({page.content_type}){note}:\n{page.text}",
            is_error=page.status >= 400,
            details={"url": page.url, "status": page.status, "bytes": len(page.text)},
        )

    return SimpleTool(
        ToolSpec(
            "web.fetch",
            "Fetch a web page (GET) of a host the workspace allows; returns its text.",
            _object({"url": {"type": "string", "minLength": 8, "maxLength": 2000}}, ["url"]),
        ),
        fetch,
    )


@dataclass(frozen=True)
class Quota:
    """How many calls a workspace may make to one API in a window."""

    limit: int
    window_seconds: int
    label: str  # "120 per minute"


def data_tool(spec: ToolSpec, api: DataApi, quota: Quota, limiter: RateLimiter | None) -> Tool:
    """A tool over an external data API, with the workspace's quota for it counted in
    Redis (refused, with when to try again, once spent; refused outright without Redis,
    since the quota could not be kept)."""

    async def query(arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        if limiter is None:
            raise ToolRefused(f"{spec.name} needs Redis to keep its quota; none is configured.")
        decision = await limiter.hit(f"{api.name}:{context.workspace_id}")
        if not decision.allowed:
            raise ToolRefused(
                f"This workspace's quota for {spec.name} ({quota.label}) is spent; it frees "
                f"up in {decision.retry_after_seconds} s."
            )
        text = await api.query(arguments)
        return ToolOutput(text, details={"quota_remaining": decision.remaining})

    return SimpleTool(spec, query)


def data_specs() -> dict[str, ToolSpec]:
    """The external data tools, by API name, with their price per call (the vendors'
    list prices, as estimates)."""
    count = {"type": "integer", "minimum": 1, "maximum": 20}
    query = {"type": "string", "minLength": 1, "maxLength": 400}
    return {
        "brave": ToolSpec(
            "search.brave",
            "Search the web (Brave Search). Returns titles, URLs and snippets.",
            _object({"query": query, "count": count}, ["query"]),
            cost_usd=Decimal("0.005"),
        ),
        "newsapi": ToolSpec(
            "news.search",
            "Find recent news articles (NewsAPI). Returns titles, sources, dates and URLs.",
            _object(
                {
                    "query": query,
                    "count": count,
                    "language": {"type": "string", "pattern": "^[a-z]{2}$"},
                },
                ["query"],
            ),
        ),
        "semrush": ToolSpec(
            "semrush.keywords",
            "Keywords related to a phrase with search volume, CPC and competition (SEMrush).",
            _object(
                {
                    "phrase": query,
                    "database": {"type": "string", "pattern": "^[a-z]{2}$"},
                    "count": {"type": "integer", "minimum": 1, "maximum": 50},
                },
                ["phrase"],
            ),
            cost_usd=Decimal("0.01"),
        ),
    }


QUOTAS = {
    "semrush": Quota(120, 60, "120 per minute"),
    "newsapi": Quota(500, 86_400, "500 per day"),
    "brave": Quota(100, 86_400, "100 per day"),
}


def _actor(context: ToolContext) -> Principal:
    if context.actor is None:
        raise ToolRefused("The run's creator no longer exists.")
    return context.actor


@dataclass(frozen=True)
class Called:
    """One call's result, for the loop: the text for the model and the step's effects."""

    call: Call
    output: ToolOutput
    awaiting_approval: bool = False


class Toolbox:
    """Every tool of the deployment, plus each workspace's MCP tools (looked up per step)."""

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        uow: UnitOfWork,
        limits: ToolLimits | None = None,
        mcp: McpClient | None = None,
        switch_cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tools = {t.spec.name: t for t in tools}
        self._uow = uow
        self.limits = limits or ToolLimits()
        self._mcp = mcp
        # Per workspace: when its switches were read, and the agents a switch turned a
        # tool on for (an agent without tool capabilities gets tools only through them).
        self._switch_ttl = switch_cache_seconds
        self._clock = clock
        self._switched: dict[UUID, tuple[float, frozenset[str]]] = {}

    def cold(self, workspace_id: UUID) -> bool:
        """Whether the workspace's switches must be read again (see `warm`)."""
        seen = self._switched.get(workspace_id)
        return seen is None or self._clock() - seen[0] >= self._switch_ttl

    async def warm(self, tx: Tx, workspace_id: UUID) -> None:
        """Read the workspace's switches in the caller's transaction (a step's claim), when
        they are older than the cache's lifetime."""
        if not self.cold(workspace_id):
            return
        settings = await tx.tools.settings(workspace_id)
        agents = frozenset(agent for (agent, _), on in settings.switches.items() if on)
        if len(self._switched) > 10_000:
            self._switched.clear()
        self._switched[workspace_id] = (self._clock(), agents)

    def switched_on(self, workspace_id: UUID, agent_code: str) -> bool:
        seen = self._switched.get(workspace_id)
        return seen is not None and agent_code in seen[1]

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [self._tools[n].spec for n in self.names]

    def could_grant(self, capabilities: Sequence[str]) -> bool:
        """Whether these capabilities grant any tool this deployment has."""
        if self._mcp is not None and MCP_CAPABILITY in capabilities:
            return True
        return any(n in self._tools for c in capabilities for n in CAPABILITY_TOOLS.get(c, ()))

    async def for_step(
        self, workspace_id: UUID, run_id: UUID, agent_code: str, capabilities: Sequence[str]
    ) -> tuple[list[Tool], ToolSettings, tuple[int, Decimal]]:
        """The tools this agent may call in this workspace, the workspace's settings, and
        the calls and tool spend of the run so far (one transaction)."""
        async with self._uow.system("tools for a step") as tx:
            settings = await tx.tools.settings(workspace_id)
            made = await tx.tools.run_usage(workspace_id, run_id)
            switched_on = any(
                tool.startswith("mcp.") and on
                for (agent, tool), on in settings.switches.items()
                if agent == agent_code
            )
            wanted = MCP_CAPABILITY in capabilities or switched_on
            servers = await tx.tools.mcp_servers(workspace_id) if self._mcp and wanted else []
        available: dict[str, Tool] = dict(self._tools)
        if servers and self._mcp is not None:
            from guildstack.services.mcp_tools import mcp_tools

            for tool in await mcp_tools(self._mcp, servers):
                available[tool.spec.name] = tool
        names = granted(capabilities, agent_code, available, settings)
        return [available[n] for n in names], settings, made

    async def call(
        self, tool: Tool | None, call: Call, context: ToolContext, *, made: tuple[int, Decimal]
    ) -> Called:
        """Run one call under the guard rails. `made`: calls and tool spend of the run so
        far. Never raises for a tool's own failure: the model reads it as an error result."""
        calls, spent = made
        settings = context.settings
        if tool is None:
            return Called(call, _error(f"There is no tool {call.name!r} for you."))
        if calls >= settings.max_calls_per_run:
            return Called(
                call,
                _error(f"This run reached its cap of {settings.max_calls_per_run} tool calls."),
            )
        if tool.spec.cost_usd and spent + tool.spec.cost_usd > settings.max_spend_per_run_usd:
            return Called(
                call,
                _error(
                    f"This run reached its cap of USD {settings.max_spend_per_run_usd} on tools."
                ),
            )
        problems = validate(dict(call.arguments), dict(tool.spec.parameters))
        if problems:
            return Called(call, _error("Invalid arguments: " + "; ".join(problems)[:1000]))
        if tool.spec.requires_approval:
            step = NewStep(
                key=context.step_key,
                agent_code=context.agent_code,
                prompt=approval_prompt(call, context.step_key),
                requires_approval=True,
            )
            text = (
                "The call waits for a person's approval; it runs as a step of this run if approved."
            )
            return Called(call, ToolOutput(text, new_step=step), awaiting_approval=True)
        return Called(call, await self.run(tool, call, context))

    async def run(self, tool: Tool, call: Call, context: ToolContext) -> ToolOutput:
        """The call itself; a priced one's cost goes to the ledger (as a usage row of
        provider `tool`)."""
        try:
            output = await tool.run(call.arguments, context)
        except ToolRefused as exc:
            output = _error(str(exc))
        except GuildstackError as exc:
            output = _error(f"{exc.title}: {exc.detail}")
        except Exception as exc:  # noqa: BLE001 - the model reads that the tool failed
            logger.warning("tool failed", extra={"tool": call.name, "error": repr(exc)})
            output = _error(f"The tool failed ({type(exc).__name__}).")
        metrics.add_metric(name="ToolCalls", unit="Count", value=1)
        price = tool.spec.cost_usd if not output.is_error else Decimal(0)
        output = replace(output, content=output.content[:MAX_TOOL_RESULT_CHARS], cost_usd=price)
        if price:
            await self._charge(call, context, price)
        return output

    async def _charge(self, call: Call, context: ToolContext, price: Decimal) -> None:
        ledger_context = CallContext(
            workspace_id=context.workspace_id,
            user_id=context.actor.user_id if context.actor else None,
            agent_code=context.agent_code,
            run_id=context.run_id,
            step_key=context.step_key,
        )
        completion = Completion(
            text="",
            usage=Usage(),
            provider=TOOL_PROVIDER,
            model=call.name,
            latency_ms=0,
            cost_usd=price,
        )
        async with self._uow.system("a priced tool call") as tx:
            reservation = await tx.ledger.reserve(ledger_context, Decimal(0))
            await tx.ledger.settle(reservation, UsageRecord(ledger_context, completion))


def _error(text: str) -> ToolOutput:
    return ToolOutput(text, is_error=True)


__all__ = [
    "TOOL_PROVIDER",
    "Called",
    "SimpleTool",
    "Toolbox",
    "ask_tool",
    "delegate_tool",
    "fetch_tool",
    "memory_tools",
]
