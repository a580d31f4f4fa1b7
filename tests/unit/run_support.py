"""Shared set-up for the run services' unit tests (not a test module).

A workspace with one member per role, a small agent catalog, scripted providers behind the
real failover chain and metered model, the step engine and the run service, all over the
in-memory unit of work. Time never passes on its own: `clock` (the transactions' time) and
`ticks` (the monotonic clock of breakers, token flushes and long polls) move by hand.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.agents import Agent, AgentSource, AgentSpec, AgentStatus
from guildstack.domain.identity import Member, Principal, Role, Workspace
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import ModelRequest, StreamItem, Tier
from guildstack.domain.run_graph import StepState
from guildstack.domain.runs import Event, Node, Workflow
from guildstack.domain.tools import ToolLimits
from guildstack.domain.vocabulary import RunKind
from guildstack.ports.models import ModelProvider
from guildstack.ports.tools import Tool
from guildstack.services.agents import AgentRegistry
from guildstack.services.engine import StepEngine
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from guildstack.services.runs import RunService
from guildstack.services.tool_loop import StepTools
from guildstack.services.tools import Toolbox, ask_tool, delegate_tool
from tests.fakes.models import ScriptedProvider
from tests.fakes.uow import Clock, InMemoryUnitOfWork, StoredRun, World

BOOK = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def spec(code: str, *capabilities: str) -> AgentSpec:
    return AgentSpec(
        code=code,
        name=code.title(),
        role=code,
        guild="core",
        description=f"The {code} agent of the unit tests.",
        system_prompt=f"You are the {code}.",
        model_tier=Tier.FAST,  # anthropic/claude-haiku-4-5 first
        max_tokens=1024,
        capabilities=capabilities,
    )


WRITER = spec("writer")
EDITOR = spec("editor")
RECALLER = spec("recaller", "memory")  # needs memories: its budget is reserved at call time
TOOLER = spec("tooler", "web", "delegation", "ask_user")  # calls tools
CATALOG = (WRITER, EDITOR, RECALLER, TOOLER)


def principal(user_id: uuid.UUID | None = None) -> Principal:
    uid = user_id or uuid.uuid4()
    return Principal(user_id=uid, email=None, claims={"sub": str(uid), "role": "authenticated"})


class Ticks:
    """A monotonic clock moved by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class GatedProvider(ScriptedProvider):
    """A scripted provider whose streams wait for `gate` (set `entered` once one waits):
    what another worker holding a step, or a slow model, looks like."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self.waiting += 1
        self.entered.set()
        await self.gate.wait()
        async for item in super().stream(model, request):
            yield item


@dataclass
class Stack:
    uow: InMemoryUnitOfWork
    clock: Clock
    ticks: Ticks
    registry: AgentRegistry
    chain: FailoverChain
    model: MeteredModel
    engine: StepEngine
    runs: RunService
    workspace: uuid.UUID
    people: dict[Role, Principal]
    sleeps: list[float]
    delivered: int = 0

    @property
    def world(self) -> World:
        return self.uow.world

    @property
    def operator(self) -> Principal:
        return self.people[Role.OPERATOR]

    def stored(self, run_id: uuid.UUID) -> StoredRun:
        return self.world.runs[run_id]

    def step(self, run_id: uuid.UUID, key: str) -> StepState:
        return self.world.runs[run_id].steps[key]

    def events(self, run_id: uuid.UUID, *types: str) -> list[Event]:
        found = self.world.runs[run_id].events
        return [e for e in found if not types or e.type in types]

    def messages(self, since: int = 0) -> list[tuple[JobMessage, int]]:
        return self.uow.sent[since:]

    async def drain(self) -> int:
        """Deliver every message sent and not yet delivered to the engine, in order."""
        count = 0
        while self.delivered < len(self.uow.sent):
            message, _ = self.uow.sent[self.delivered]
            self.delivered += 1
            await self.engine.handle(message)
            count += 1
        return count

    async def start(self, *nodes: Node, kind: RunKind = RunKind.DAG, **kw: object) -> uuid.UUID:
        workflow = Workflow(kind, "t", "Launch the product.", nodes, **kw)  # type: ignore[arg-type]
        run = await self.runs.start(self.operator, self.workspace, workflow)
        return run.id

    def pause(self, agent: AgentSpec, status: AgentStatus = AgentStatus.PAUSED) -> None:
        """The workspace's row of a catalog agent, in `status` (paused: not runnable)."""
        self.world.agents[(self.workspace, agent.code)] = Agent(agent, AgentSource.CATALOG, status)


def build(
    *providers: ModelProvider,
    budget: Decimal | None = Decimal("10"),
    lease_seconds: int = 180,
    flush_chars: int = 400,
    flush_seconds: float = 0.25,
    breaker_threshold: int = 5,
    breaker_cooldown_seconds: float = 30.0,
    tools: Sequence[Tool] = (),
    tool_limits: ToolLimits | None = None,
) -> Stack:
    clock = Clock(START)
    ticks = Ticks()
    world = World()
    uow = InMemoryUnitOfWork(world, clock=clock)
    workspace = uuid.uuid4()
    world.workspaces[workspace] = Workspace(workspace, "Team", "team", Decimal("10"), START)
    world.budgets[workspace] = budget
    people: dict[Role, Principal] = {}
    world.members[workspace] = {}
    for role in Role:
        person = principal()
        people[role] = person
        world.members[workspace][person.user_id] = Member(
            workspace, person.user_id, None, None, role, START
        )
    registry = AgentRegistry(CATALOG, uow)

    async def no_wait(seconds: float) -> None:
        return None

    chain = FailoverChain(
        {p.name: p for p in (providers or (ScriptedProvider("anthropic", ["Done."]),))},
        breaker_threshold=breaker_threshold,
        breaker_cooldown_seconds=breaker_cooldown_seconds,
        sleep=no_wait,
        clock=ticks,
        jitter=lambda: 0.5,
    )
    model = MeteredModel(chain, BOOK, uow, clock=ticks)
    limits = tool_limits or ToolLimits()
    toolbox = Toolbox(
        [ask_tool(), delegate_tool(uow, registry, limits), *tools], uow=uow, limits=limits
    )
    engine = StepEngine(
        uow,
        registry,
        model,
        lease_seconds=lease_seconds,
        flush_chars=flush_chars,
        flush_seconds=flush_seconds,
        clock=ticks,
        tools=StepTools(toolbox, uow),
    )
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # the long poll's wait: time passes, nothing else
        sleeps.append(seconds)
        ticks.advance(seconds)

    runs = RunService(uow, registry, sleep=sleep, clock=ticks)
    return Stack(uow, clock, ticks, registry, chain, model, engine, runs, workspace, people, sleeps)


async def until(condition: Callable[[], bool], *, turns: int = 1000) -> None:
    """Let other tasks run until `condition` holds (a bounded number of loop turns)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def texts(calls: Sequence[tuple[str, ModelRequest]]) -> list[str]:
    """The user message of each provider call."""
    return [request.messages[-1].content for _, request in calls]
