"""In-memory stand-ins for the model ports (unit tests of services only)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.agents.council_prompts import REVISED
from guildstack.domain.errors import GuildstackError, InvalidRequest
from guildstack.domain.models import (
    CallContext,
    CallPlan,
    Completion,
    Delta,
    ModelRef,
    ModelRequest,
    Reservation,
    StreamItem,
    Ticket,
    Usage,
)
from guildstack.domain.tools import ToolCall
from guildstack.domain.usage import UsageRecord
from guildstack.ports.usage import UsageLedger
from tests.fakes.uow import InMemoryUnitOfWork, World

Step = str | GuildstackError | tuple[ToolCall, ...]


@dataclass
class ScriptedProvider:
    """Plays `script` in order: a string answers, a tuple of tool calls calls tools (when
    the request allows it; otherwise it answers "No tools."), an error is raised (the last
    repeats)."""

    name: str
    script: list[Step]
    calls: list[tuple[str, ModelRequest]] = field(default_factory=list)

    def __init__(self, name: str, script: Sequence[Step]) -> None:
        self.name = name
        self.script = list(script)
        self.calls = []

    def _next(self, model: str, request: ModelRequest) -> tuple[str, tuple[ToolCall, ...]]:
        self.calls.append((model, request))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, GuildstackError):
            raise step
        if isinstance(step, tuple):
            if request.tools and request.tool_choice != "none":
                return "", step
            return "No tools.", ()
        return step, ()

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        text, calls = self._next(model, request)
        return Completion(
            text,
            Usage(10, len(text) + 5 * len(calls)),
            self.name,
            model,
            latency_ms=1.0,
            tool_calls=calls,
        )

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        text, calls = self._next(model, request)
        for word in text.split(" "):
            yield Delta(word)
        yield Completion(
            text,
            Usage(10, len(text) + 5 * len(calls)),
            self.name,
            model,
            latency_ms=1.0,
            tool_calls=calls,
        )


def _usage(text: str, calls: tuple[ToolCall, ...]) -> Usage:
    return Usage(10, len(text) + 5 * len(calls))


class AnsweringModel:
    """A `LanguageModel` whose answer to each call comes from `answer(request, context)`
    (subclasses decide); no budget: `reserve` hands out free tickets; a stream sends the
    answer word by word."""

    def answer(self, request: ModelRequest, context: CallContext) -> Completion:
        raise NotImplementedError

    async def reserve(
        self, ledger: UsageLedger, request: ModelRequest, context: CallContext
    ) -> Ticket:
        plan = CallPlan((ModelRef("scripted", "m1"),), Decimal(0), None, None)
        return Ticket(plan, Reservation(uuid.uuid4(), context.workspace_id, Decimal(0)))

    async def complete(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> Completion:
        return self.answer(request, context)

    async def stream(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> AsyncIterator[StreamItem]:
        completion = self.answer(request, context)
        words = completion.text.split(" ")
        for i, word in enumerate(words):
            yield Delta(word if i == len(words) - 1 else word + " ")
        yield completion


@dataclass
class ScriptedModel(AnsweringModel):
    """Answers with `replies` in order (a string, a Completion, or an error to raise; the
    last one repeats) and keeps the requests."""

    replies: list[str | Completion | GuildstackError]
    requests: list[ModelRequest] = field(default_factory=list)

    def answer(self, request: ModelRequest, context: CallContext) -> Completion:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, GuildstackError):
            raise reply
        if isinstance(reply, Completion):
            return reply
        return Completion(reply, Usage(10, 5), "scripted", "m1", latency_ms=1.0)


class InMemoryLedger:
    """One budget for every workspace, over the in-memory unit of work: what MeteredModel's
    tests need to see (usage rows and money held)."""

    def __init__(self, budget: Decimal | None = None) -> None:
        self.uow = InMemoryUnitOfWork(World(default_budget=budget))

    @property
    def records(self) -> list[UsageRecord]:
        return self.uow.world.usage

    @property
    def held(self) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID | None, Decimal]]:
        return self.uow.world.held


class AskingOffline(OfflineProvider):
    """The offline provider, except that a prompt containing `[ask]` makes the agent ask
    the user a question first (and answer normally once the prompt holds the answer), and
    a lord reviewing work of a campaign named with `[reject-once]` rejects the first draft
    (with a reason) and approves the revision. An onboarding step of a company named with
    `[flaky]` is rejected as a bad request while its title is in `broken_steps`."""

    broken_steps: ClassVar[set[str]] = set()

    def answer(self, request: ModelRequest) -> str:
        prompt = request.messages[-1].content if request.messages else ""
        if "[flaky]" in prompt and any(prompt.endswith(f"# Step\n{t}") for t in self.broken_steps):
            raise InvalidRequest("offline: this step is broken for the test")
        if "[ask]" in prompt and "# The user answered" not in prompt:
            return "QUESTION: Which market should we launch in first?"
        reviewing = "verdict" in (request.json_schema or {}).get("properties", {})
        if reviewing and "[reject-once]" in prompt and REVISED not in prompt:
            return json.dumps(
                {"verdict": "reject", "reasons": ["Name one competitor with a source."]}
            )
        return super().answer(request)
