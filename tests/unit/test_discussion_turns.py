"""Team discussions on the step engine over the in-memory unit of work, with a scripted
model per persona: consensus, a persona rejecting twice (conflict resolution, a revised
proposal, the final tally), a stuck discussion, a question that pauses the conversation
(redelivered messages change nothing) and an answer that resumes it, and a spent budget
that ends it cleanly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from guildstack.agents.catalog import load_agents
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.identity import Member, Principal, Role, Workspace
from guildstack.domain.jobs import JobKind
from guildstack.domain.models import (
    CallContext,
    Completion,
    ModelRequest,
    Usage,
)
from guildstack.domain.vocabulary import (
    ConversationMode,
    ConversationStatus,
    MessageType,
    RunKind,
    RunStatus,
)
from guildstack.services.agents import AgentRegistry
from guildstack.services.conversations import ConversationService
from guildstack.services.discussion_turns import DiscussionTurns
from guildstack.services.discussions import DiscussionService
from guildstack.services.engine import StepAttemptFailed, StepEngine
from guildstack.services.run_finishers import DiscussionFinisher
from tests.fakes.models import AnsweringModel
from tests.fakes.uow import Clock, InMemoryUnitOfWork, StoredConversation

CATALOG = load_agents(Path(__file__).resolve().parents[2] / "infra/catalog/agents.yaml")
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TEAM = ["project_manager", "technical_architect", "quality_assurance"]

# What a persona says: a reply, a reply per call (the last repeats), or a function of the
# request's prompt.
Script = Callable[[str, ModelRequest], str]


@dataclass
class PersonaModel(AnsweringModel):
    """Answers by persona (the call's agent): views as text, proposals and votes as JSON."""

    votes: dict[str, list[str]] = field(default_factory=dict)  # persona → votes in order
    say: Script = lambda agent, request: f"{agent}: a concrete point about the goal."
    budget_after: int | None = None  # calls before every call is over budget
    calls: list[tuple[str, str]] = field(default_factory=list)  # (agent, kind)

    def answer(self, request: ModelRequest, context: CallContext) -> Completion:
        agent = context.agent_code or "?"
        schema = request.json_schema or {}
        kind = "vote" if "vote" in schema.get("properties", {}) else "proposal" if schema else "say"
        if self.budget_after is not None and len(self.calls) >= self.budget_after:
            raise BudgetExceeded("The budget cannot cover this model call.")
        self.calls.append((agent, kind))
        if kind == "vote":
            queue = self.votes.get(agent, [])
            cast = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else "accept")
            text = json.dumps({"vote": cast, "reason": f"{agent} says {cast}", "confidence": 0.7})
        elif kind == "proposal":
            n = sum(1 for _, k in self.calls if k == "proposal")
            text = json.dumps({"title": f"Plan {n}", "body": f"Do the thing, version {n}."})
        else:
            text = self.say(agent, request)
        return Completion(text, Usage(20, 10), "scripted", "m1", 1.0, cost_usd=Decimal("0.001"))


@dataclass
class Team:
    uow: InMemoryUnitOfWork
    model: PersonaModel
    engine: StepEngine
    discussions: DiscussionService
    conversations: ConversationService
    workspace: uuid.UUID
    member: Principal
    delivered: int = 0

    async def drain(self) -> int:
        """Deliver every step message sent and not delivered yet, in order, like a worker."""
        count = 0
        while self.delivered < len(self.uow.sent):
            message, _ = self.uow.sent[self.delivered]
            self.delivered += 1
            if message.kind is JobKind.STEP:
                await self.engine.handle(message)
                count += 1
        return count

    async def discuss(self, **settings: Any) -> uuid.UUID:
        conversation = await self.conversations.create(
            self.member,
            self.workspace,
            mode=ConversationMode.DISCUSSION,
            goal="Choose how we launch the beta.",
            agents=TEAM,
            settings={"summary_every": 50, **settings},
        )
        await self.discussions.start(self.member, self.workspace, conversation.id)
        return conversation.id

    def stored(self, conversation_id: uuid.UUID) -> StoredConversation:
        return self.uow.world.conversations[conversation_id]


def team(model: PersonaModel | None = None) -> Team:
    uow = InMemoryUnitOfWork(
        clock=Clock(START), finishers={RunKind.DISCUSSION: DiscussionFinisher()}
    )
    world = uow.world
    workspace = uuid.uuid4()
    world.workspaces[workspace] = Workspace(workspace, "Team", "team", Decimal(10), START)
    uid = uuid.uuid4()
    member = Principal(uid, None, {"sub": str(uid), "role": "authenticated"})
    world.members[workspace] = {uid: Member(workspace, uid, None, None, Role.ANALYST, START)}
    model = model or PersonaModel()
    registry = AgentRegistry(CATALOG, uow)
    engine = StepEngine(
        uow, registry, model, executors={RunKind.DISCUSSION: DiscussionTurns(uow, model)}
    )
    discussions = DiscussionService(uow, registry)
    conversations = ConversationService(uow, registry, discussions=discussions)
    return Team(uow, model, engine, discussions, conversations, workspace, member)


def kinds(stored: StoredConversation) -> list[str]:
    return [m.metadata["turn"]["kind"] for m in stored.messages if "turn" in m.metadata]


async def test_given_an_agreeable_team_then_the_discussion_reaches_consensus() -> None:
    t = team()
    cid = await t.discuss()

    await t.drain()

    stored = t.stored(cid)
    assert stored.conversation.status is ConversationStatus.COMPLETED
    assert kinds(stored) == ["open", "speak", "speak", "speak", "speak", "propose",
                             "vote", "vote", "vote", "conclude"]  # fmt: skip
    result = stored.conversation.result or {}
    assert result["consensus"] and result["reason"] == "consensus"
    assert result["proposal"]["title"] == "Plan 1" and result["dissent"] == []
    assert stored.conversation.final_summary
    events = [e.type for e in stored.events]
    assert "consensus.reached" in events and events[-1] == "status.changed"
    (run,) = t.uow.world.runs.values()
    assert run.run.status is RunStatus.SUCCEEDED


async def test_given_a_persona_rejecting_twice_then_a_revision_is_voted_and_the_tally_kept() -> (
    None
):
    t = team(PersonaModel(votes={"quality_assurance": ["reject", "reject", "accept"]}))
    cid = await t.discuss(consensus_rule="unanimous", max_rounds=2)

    await t.drain()

    stored = t.stored(cid)
    assert kinds(stored)[5:] == [
        "propose", "vote", "vote", "vote",
        "resolve", "vote", "vote", "vote",
        "resolve", "vote", "vote", "vote",
        "conclude",
    ]  # fmt: skip
    result = stored.conversation.result or {}
    assert [t_["accepted"] for t_ in result["tallies"]] == [False, False, True]
    assert result["proposal"]["number"] == 3 and result["rounds"] == 2
    assert result["tallies"][0]["votes"]["quality_assurance"] == "reject"
    proposals = [m for m in stored.messages if m.type is MessageType.PROPOSAL]
    assert [m.content.split("\n")[0] for m in proposals] == ["Plan 1", "Plan 2", "Plan 3"]


async def test_given_a_stuck_team_then_the_facilitator_steps_in() -> None:
    t = team(PersonaModel(say=lambda agent, request: "We should think about it more."))
    cid = await t.discuss(stuck_turns=2)

    await t.drain()

    proposal = next(m for m in t.stored(cid).messages if m.type is MessageType.PROPOSAL)
    assert proposal.metadata["turn"]["reason"].startswith("stuck")
    assert t.stored(cid).conversation.status is ConversationStatus.COMPLETED


async def test_given_a_question_then_the_conversation_waits_and_the_answer_resumes_it() -> None:
    def say(agent: str, request: ModelRequest) -> str:
        prompt = request.messages[-1].content
        if agent == "technical_architect" and "Web and iOS" not in prompt:
            return "QUESTION: Which platforms must the beta support?"
        return f"{agent}: a view."

    t = team(PersonaModel(say=say))
    cid = await t.discuss()
    await t.drain()
    stored = t.stored(cid)
    assert stored.conversation.status is ConversationStatus.PAUSED
    (pending,) = await t.conversations.pending(t.member, t.workspace, cid)
    assert pending.type is MessageType.QUESTION_TO_USER
    # A worker restarting, or a message delivered again, changes nothing while it waits.
    calls, events = len(t.model.calls), len(stored.events)
    for message, _ in list(t.uow.sent):
        if message.kind is JobKind.STEP:
            try:
                await t.engine.handle(message)
            except StepAttemptFailed:  # pragma: no cover - nothing holds a lease here
                raise
    assert (len(t.model.calls), len(stored.events)) == (calls, events)

    await t.conversations.post(t.member, t.workspace, cid, "Web and iOS.")
    assert t.stored(cid).conversation.status is ConversationStatus.ACTIVE
    await t.drain()

    assert t.stored(cid).conversation.status is ConversationStatus.COMPLETED
    assert await t.conversations.pending(t.member, t.workspace, cid) == []
    asked_again = [r for a, k in t.model.calls if (r := (a, k)) == ("technical_architect", "say")]
    assert len(asked_again) >= 2  # the architect's turn ran again, with the answer


async def test_given_the_budget_runs_out_then_the_discussion_ends_with_a_summary_saying_why() -> (
    None
):
    t = team(PersonaModel(budget_after=3))
    cid = await t.discuss()

    await t.drain()

    stored = t.stored(cid)
    assert stored.conversation.status is ConversationStatus.COMPLETED
    assert (stored.conversation.result or {})["reason"] == "the budget ran out"
    assert "budget" in (stored.conversation.final_summary or "")


async def test_given_a_discussion_then_it_starts_once_and_analytics_count_each_persona() -> None:
    t = team()
    cid = await t.discuss()
    await t.drain()

    analytics = await t.discussions.analytics(t.member, t.workspace, cid)

    assert analytics["personas"]["quality_assurance"]["turns"] == 3  # two views and a vote
    assert analytics["personas"]["project_manager"]["output_tokens"] > 0
    assert analytics["votes"][0]["accepted"] and analytics["seconds_to_consensus"] is not None
    try:
        await t.discussions.start(t.member, t.workspace, cid)
    except Exception as exc:  # noqa: BLE001 - asserting the type below
        assert type(exc).__name__ == "Conflict"
    else:  # pragma: no cover
        raise AssertionError("a concluded discussion started again")


async def test_given_a_cancelled_discussion_then_the_conversation_completes_saying_so() -> None:
    t = team()
    cid = await t.discuss()
    (run_id,) = t.uow.world.runs

    async with t.uow.system("cancel") as tx:
        async with tx.runs.locked(t.workspace, run_id) as graph:
            graph.cancel(None, now=tx.now)

    stored = t.stored(cid)
    assert stored.conversation.status is ConversationStatus.COMPLETED
    assert (stored.conversation.result or {})["run_status"] == "cancelled"
    assert "cancelled" in (stored.conversation.final_summary or "")
    assert await t.drain() == 1  # the queued first turn's message finds the run cancelled
    assert t.model.calls == []
