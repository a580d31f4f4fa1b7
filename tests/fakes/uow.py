"""An in-memory unit of work whose repositories honour the database's rules.

`World` is what the database holds. A transaction works on the world in place and restores
a snapshot when it fails, so a change is all or nothing. Transactions run one at a time
(serializable, like the run row locks make the engine's changes), and a nested transaction
in one task is refused: every use case gets exactly one unit of work. Visibility follows
the row-level security policies: a user transaction sees the workspaces its actor belongs
to, and writing needs the role the policies ask for.
"""

from __future__ import annotations

import asyncio
import copy
import math
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from guildstack.domain.agents import Agent, AgentActivity
from guildstack.domain.audits import Finding, Severity, StoredFinding
from guildstack.domain.campaigns import (
    Campaign,
    CampaignStatus,
    Decision,
    ObjectiveType,
    Quest,
)
from guildstack.domain.conversations import (
    Conversation,
    ConversationEvent,
    ConversationEventType,
    ConversationMode,
    ConversationStatus,
    Message,
    MessageType,
    NewMessage,
    SenderKind,
    Standing,
)
from guildstack.domain.errors import BudgetExceeded, Conflict, Forbidden, NotFound
from guildstack.domain.identity import (
    AccountKind,
    Invite,
    Member,
    Membership,
    Principal,
    Profile,
    Role,
    Workspace,
)
from guildstack.domain.jobs import DocumentJob, DocumentStatus, JobMessage
from guildstack.domain.memory import Candidate, Collection, Document, Memory, MemoryScope
from guildstack.domain.models import CallContext, Reservation
from guildstack.domain.paging import Cursor, Page, PageRequest, page_of
from guildstack.domain.run_graph import NewEvent, RunGraph, RunState, StepState
from guildstack.domain.runs import Approval, Event, Handoff, Question, Run
from guildstack.domain.tools import ToolSettings
from guildstack.domain.usage import (
    BudgetStatus,
    GroupBy,
    UsageRecord,
    UsageReport,
    UsageTotals,
)
from guildstack.domain.vocabulary import EventType, GateStatus, RunKind, RunStatus, StepStatus
from guildstack.ports.audits import (
    Flagged,
    ProviderCalls,
    UnprotectedTable,
    WeekSummary,
    WorkspaceSpend,
)
from guildstack.ports.memory import CandidateQuery, NewMemory, PendingDocument
from guildstack.ports.runs import StaleStep, StepContext, StepInputs
from guildstack.ports.tools import McpServer
from guildstack.ports.uow import RunFinishers

T = TypeVar("T")


@dataclass
class StoredRun:
    run: RunState
    steps: dict[str, StepState]
    events: list[Event] = field(default_factory=list)
    approvals: dict[UUID, Approval] = field(default_factory=dict)
    questions: dict[UUID, Question] = field(default_factory=dict)
    handoffs: dict[str, Handoff] = field(default_factory=dict)


@dataclass
class StoredDocument:
    document: Document
    job: DocumentJob
    text: str | None
    updated_at: datetime


@dataclass
class World:
    workspaces: dict[UUID, Workspace] = field(default_factory=dict)
    members: dict[UUID, dict[UUID, Member]] = field(default_factory=dict)
    emails: dict[str, UUID] = field(default_factory=dict)
    invites: dict[tuple[UUID, str], Invite] = field(default_factory=dict)
    agents: dict[tuple[UUID, str], Agent] = field(default_factory=dict)
    runs: dict[UUID, StoredRun] = field(default_factory=dict)
    budgets: dict[UUID, Decimal | None] = field(default_factory=dict)
    # The budget of workspaces not in `budgets` (None: no limit).
    default_budget: Decimal | None = None
    spent: dict[UUID, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    held: dict[UUID, tuple[UUID, UUID | None, Decimal]] = field(default_factory=dict)
    usage: list[UsageRecord] = field(default_factory=list)
    memories: dict[UUID, tuple[Memory, list[float]]] = field(default_factory=dict)
    votes: dict[tuple[UUID, UUID], int] = field(default_factory=dict)  # (memory, user) → ±1
    documents: dict[UUID, StoredDocument] = field(default_factory=dict)
    conversations: dict[UUID, StoredConversation] = field(default_factory=dict)
    tool_settings: dict[UUID, ToolSettings] = field(default_factory=dict)
    mcp_servers: dict[UUID, McpServer] = field(default_factory=dict)
    findings: list[StoredFinding] = field(default_factory=list)
    campaigns: dict[UUID, Campaign] = field(default_factory=dict)
    quests: dict[UUID, Quest] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)

    def snapshot(self) -> World:
        """A copy to roll back to. Rows written as frozen values (workspaces, members,
        events, gates, usage...) are shared; the mutable ones (run and step states, jobs)
        are copied; every collection is copied."""
        return World(
            workspaces=dict(self.workspaces),
            members={ws: dict(m) for ws, m in self.members.items()},
            emails=dict(self.emails),
            invites=dict(self.invites),
            agents=dict(self.agents),
            runs={
                rid: StoredRun(
                    copy.copy(r.run),
                    _rows(r.steps),
                    list(r.events),
                    dict(r.approvals),
                    dict(r.questions),
                    dict(r.handoffs),
                )
                for rid, r in self.runs.items()
            },  # fmt: skip
            budgets=dict(self.budgets),
            default_budget=self.default_budget,
            spent=defaultdict(Decimal, self.spent),
            held=dict(self.held),
            usage=list(self.usage),
            memories=dict(self.memories),
            votes=dict(self.votes),
            documents={
                did: StoredDocument(d.document, copy.copy(d.job), d.text, d.updated_at)
                for did, d in self.documents.items()
            },
            conversations={
                cid: StoredConversation(c.conversation, list(c.messages), list(c.events))
                for cid, c in self.conversations.items()
            },
            tool_settings=dict(self.tool_settings),
            mcp_servers=dict(self.mcp_servers),
            findings=list(self.findings),
            campaigns=dict(self.campaigns),
            quests=dict(self.quests),
            decisions=list(self.decisions),
        )

    def register(self, email: str) -> UUID:
        user_id = uuid.uuid4()
        self.emails[email] = user_id
        return user_id

    def role(self, workspace_id: UUID, user_id: UUID) -> Role | None:
        member = self.members.get(workspace_id, {}).get(user_id)
        return member.role if member else None


def _rows(steps: dict[str, StepState]) -> dict[str, StepState]:
    """Step rows copied one level deep (every field of a step holds an immutable value)."""
    return {key: copy.copy(step) for key, step in steps.items()}


class Clock:
    """A clock tests move by hand; starts at a fixed moment."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class InMemoryUnitOfWork:
    def __init__(
        self,
        world: World | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        queue: Any = None,
        finishers: RunFinishers | None = None,
    ) -> None:
        self.world = world or World()
        self.finishers = dict(finishers or {})
        self.clock = clock or Clock()
        self.queue = queue
        self.sent: list[tuple[JobMessage, int]] = []
        self.unsent: list[JobMessage] = []
        self.transactions: list[str] = []
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    def __call__(self, actor: Principal) -> AbstractAsyncContextManager[FakeTx]:
        return self._transaction(actor, "as user")

    def reading(self, actor: Principal) -> AbstractAsyncContextManager[FakeTx]:
        return self._transaction(actor, "as user")

    def system(self, reason: str) -> AbstractAsyncContextManager[FakeTx]:
        return self._transaction(None, reason)

    @asynccontextmanager
    async def _transaction(self, actor: Principal | None, name: str) -> AsyncIterator[FakeTx]:
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise RuntimeError("a unit of work was opened inside another one")
        async with self._lock:
            self._holder = task
            self.transactions.append(name)
            snapshot = self.world.snapshot()
            tx = FakeTx(self.world, actor, self.clock())
            try:
                yield tx
                for graph in tx.ended:
                    finisher = self.finishers.get(graph.run.kind)
                    if finisher is not None:
                        await finisher.finished(tx, graph)
            except BaseException:
                self.world.__dict__.update(snapshot.__dict__)
                raise
            finally:
                self._holder = None
        for delay, messages in tx.outbox.items():
            self.sent.extend((m, delay) for m in messages)
            if self.queue is not None:
                try:
                    await self.queue.send(messages, delay_seconds=delay)
                except Exception:  # noqa: BLE001 - as the real unit of work: the sweeper re-sends
                    self.unsent.extend(messages)


class FakeTx:
    def __init__(self, world: World, actor: Principal | None, now: datetime) -> None:
        self.world = world
        self._actor = actor
        self._now = now
        self.outbox: dict[int, list[JobMessage]] = defaultdict(list)
        self.ended: list[RunGraph] = []
        self.workspaces = FakeWorkspaces(self)
        self.agents = FakeAgents(self)
        self.runs = FakeRuns(self)
        self.ledger = FakeLedger(self)
        self.memories = FakeMemories(self)
        self.documents = FakeDocuments(self)
        self.conversations = FakeConversations(self)
        self.tools = FakeTools(self)
        self.audits = FakeAudits(self)
        self.campaigns = FakeCampaigns(self)

    @property
    def actor(self) -> Principal | None:
        return self._actor

    @property
    def now(self) -> datetime:
        return self._now

    def send(self, *messages: JobMessage, delay_seconds: int = 0) -> None:
        self.outbox[delay_seconds].extend(messages)

    # What row-level security would let the actor do ----------------------------------------

    def sees(self, workspace_id: UUID, minimum: Role = Role.VIEWER) -> bool:
        if self._actor is None:
            return True
        role = self.world.role(workspace_id, self._actor.user_id)
        return role is not None and role.at_least(minimum)

    def may_write(self, workspace_id: UUID, minimum: Role) -> None:
        if not self.sees(workspace_id, minimum):
            raise Forbidden("Not allowed.")

    @property
    def me(self) -> UUID:
        if self._actor is None:
            raise RuntimeError("this read needs a transaction acting for a signed-in user")
        return self._actor.user_id


def _page(
    rows: list[T], page: PageRequest, key: Callable[[T], Cursor], *, newest_first: bool
) -> Page[T]:
    rows = sorted(rows, key=key, reverse=newest_first)
    if page.after is not None:
        after = page.after
        rows = [r for r in rows if (key(r) < after if newest_first else key(r) > after)]
    return page_of(rows[: page.limit + 1], page.limit, key)


class FakeWorkspaces:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    async def role_of(self, workspace_id: UUID, user_id: UUID | None = None) -> Role | None:
        if not self._tx.sees(workspace_id):
            return None
        return self._w.role(workspace_id, user_id or self._tx.me)

    async def create(self, name: str, slug: str, monthly_budget_usd: Decimal | None) -> Workspace:
        me = self._tx.me
        slug = f"{slug}-{uuid.uuid4().hex[:8]}"  # as the database: its own suffix, always
        ws = Workspace(uuid.uuid4(), name, slug, monthly_budget_usd or Decimal("10"), self._tx.now)
        self._w.workspaces[ws.id] = ws
        self._w.budgets[ws.id] = ws.monthly_budget_usd
        self._w.members[ws.id] = {
            me: Member(ws.id, me, self._tx.actor.email if self._tx.actor else None, None,
                       Role.OWNER, self._tx.now)
        }  # fmt: skip
        return replace(ws, role=Role.OWNER)

    async def list_mine(self, page: PageRequest) -> Page[Workspace]:
        mine = [
            replace(ws, role=self._w.role(ws.id, self._tx.me))
            for ws in self._w.workspaces.values()
            if self._w.role(ws.id, self._tx.me) is not None
        ]
        return _page(mine, page, lambda w: (w.created_at, w.id), newest_first=False)

    async def get(self, workspace_id: UUID) -> Workspace | None:
        role = self._w.role(workspace_id, self._tx.me)
        ws = self._w.workspaces.get(workspace_id)
        return replace(ws, role=role) if ws and role else None

    async def update(
        self,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
        conversation_retention_days: int | None = None,
    ) -> Workspace | None:
        if not self._tx.sees(workspace_id, Role.ADMIN) or workspace_id not in self._w.workspaces:
            return None
        ws = self._w.workspaces[workspace_id]
        budget = monthly_budget_usd if monthly_budget_usd is not None else ws.monthly_budget_usd
        days = ws.conversation_retention_days
        if conversation_retention_days is not None:
            days = conversation_retention_days or None
        self._w.workspaces[workspace_id] = replace(
            ws, name=name or ws.name, monthly_budget_usd=budget, conversation_retention_days=days
        )
        self._w.budgets[workspace_id] = budget
        return await self.get(workspace_id)

    async def members(self, workspace_id: UUID, page: PageRequest) -> Page[Member]:
        if not self._tx.sees(workspace_id):
            return Page([], None)
        rows = list(self._w.members[workspace_id].values())
        return _page(rows, page, lambda m: (m.created_at, m.user_id), newest_first=False)

    async def member(self, workspace_id: UUID, user_id: UUID) -> Member | None:
        if not self._tx.sees(workspace_id):
            return None
        return self._w.members[workspace_id].get(user_id)

    async def invite(self, workspace_id: UUID, email: str, role: Role) -> Invite:
        self._tx.may_write(workspace_id, Role.OWNER if role is Role.OWNER else Role.ADMIN)
        user_id = self._w.emails.get(email)
        if user_id is not None and user_id in self._w.members[workspace_id]:
            raise Conflict("That email is already a member's.")
        now = self._tx.now
        invite = Invite(workspace_id, email, role, now, now + timedelta(days=14))
        self._w.invites[(workspace_id, email)] = invite
        return invite

    async def accept_invites(self) -> int:
        me = self._tx.me
        mine = {email for email, user_id in self._w.emails.items() if user_id == me}
        joined = 0
        for key, invite in list(self._w.invites.items()):
            if invite.email in mine and invite.expires_at > self._tx.now:
                del self._w.invites[key]
                if me not in self._w.members[invite.workspace_id]:
                    member = Member(invite.workspace_id, me, invite.email, None, invite.role,
                                    self._tx.now)  # fmt: skip
                    self._w.members[invite.workspace_id][me] = member
                    joined += 1
        return joined

    def _owners(self, workspace_id: UUID) -> int:
        return sum(m.role is Role.OWNER for m in self._w.members[workspace_id].values())

    async def set_role(self, workspace_id: UUID, user_id: UUID, role: Role) -> Member | None:
        self._tx.may_write(workspace_id, Role.ADMIN)
        old = self._w.members[workspace_id].get(user_id)
        if old is None:
            return None
        if old.role is Role.OWNER and role is not Role.OWNER and self._owners(workspace_id) == 1:
            raise Conflict("A workspace must keep at least one owner.")
        new = replace(old, role=role)
        self._w.members[workspace_id][user_id] = new
        return new

    async def set_account_kind(
        self, workspace_id: UUID, user_id: UUID, kind: AccountKind
    ) -> Member | None:
        self._tx.may_write(workspace_id, Role.ADMIN)
        old = self._w.members[workspace_id].get(user_id)
        if old is None:
            return None
        new = replace(old, account_kind=kind)
        self._w.members[workspace_id][user_id] = new
        return new

    async def remove_member(self, workspace_id: UUID, user_id: UUID) -> bool:
        if user_id != self._tx.me:
            self._tx.may_write(workspace_id, Role.ADMIN)
        old = self._w.members[workspace_id].get(user_id)
        if old is None:
            return False
        if old.role is Role.OWNER and self._owners(workspace_id) == 1:
            raise Conflict("A workspace must keep at least one owner.")
        del self._w.members[workspace_id][user_id]
        return True

    async def profile(self) -> Profile | None:
        actor = self._tx.actor
        if actor is None:
            return None
        return Profile(actor.user_id, actor.email, None, AccountKind.STANDARD, 20, None)

    async def memberships(self) -> list[Membership]:
        me = self._tx.me
        return [
            Membership(ws.id, ws.name, self._w.members[ws.id][me].role)
            for ws in self._w.workspaces.values()
            if me in self._w.members.get(ws.id, {})
        ]

    async def touch(self) -> None:
        return None


class FakeAgents:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    async def all(self, workspace_id: UUID) -> list[Agent]:
        if not self._tx.sees(workspace_id):
            return []
        return [a for (ws, _), a in sorted(self._w.agents.items()) if ws == workspace_id]

    async def get(self, workspace_id: UUID, code: str) -> Agent | None:
        if not self._tx.sees(workspace_id):
            return None
        return self._w.agents.get((workspace_id, code))

    async def activity(self, workspace_id: UUID, window: timedelta) -> dict[str, AgentActivity]:
        """From the world's steps, as the real query reads them (latency not modelled)."""
        if not self._tx.sees(workspace_id):
            return {}
        since = self._tx.now - window
        settled_kinds = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.DEAD)
        found: dict[str, list[StepState]] = defaultdict(list)
        for stored in self._w.runs.values():
            if stored.run.workspace_id != workspace_id:
                continue
            for step in stored.steps.values():
                found[step.agent_code].append(step)
        days = max(1, round(window.total_seconds() / 86_400))
        result = {}
        for code, steps in found.items():
            settled = [
                s
                for s in steps
                if s.status in settled_kinds and s.finished_at and s.finished_at >= since
            ]
            settled.sort(key=lambda s: s.finished_at or since)
            result[code] = AgentActivity(
                window_days=days,
                settled=len(settled),
                succeeded=sum(s.status is StepStatus.SUCCEEDED for s in settled),
                running=sum(s.status is StepStatus.RUNNING for s in steps),
                last_failed=bool(settled) and settled[-1].status is not StepStatus.SUCCEEDED,
            )
        return result

    async def insert(self, workspace_id: UUID, agent: Agent) -> Agent:
        if (workspace_id, agent.code) in self._w.agents:
            raise Conflict("That already exists.")
        return await self.save(workspace_id, agent)

    async def save(self, workspace_id: UUID, agent: Agent) -> Agent:
        self._tx.may_write(workspace_id, Role.ADMIN)
        stored = replace(agent, customized=True)
        self._w.agents[(workspace_id, agent.code)] = stored
        return stored


class FakeRuns:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    def _stored(self, workspace_id: UUID, run_id: UUID) -> StoredRun:
        stored = self._w.runs.get(run_id)
        if stored is None or stored.run.workspace_id != workspace_id:
            raise NotFound("No such run in this workspace.")
        if not self._tx.sees(workspace_id):
            raise NotFound("No such run in this workspace.")
        return stored

    async def add(self, graph: RunGraph) -> Run:
        self._tx.may_write(graph.run.workspace_id, Role.OPERATOR)
        self._w.runs[graph.run.id] = StoredRun(copy.copy(graph.run), _rows(graph.steps))
        self._save(graph)
        return graph.snapshot()

    @asynccontextmanager
    async def locked(self, workspace_id: UUID, run_id: UUID) -> AsyncIterator[RunGraph]:
        stored = self._stored(workspace_id, run_id)
        graph = RunGraph(copy.copy(stored.run), _rows(stored.steps))
        yield graph
        if self._tx.actor is not None and (graph.events or graph.touched):
            self._tx.may_write(workspace_id, Role.OPERATOR)
        self._save(graph)

    @asynccontextmanager
    async def claiming(
        self, workspace_id: UUID, run_id: UUID, step_keys: Sequence[str]
    ) -> AsyncIterator[tuple[RunGraph, dict[str, StepContext]]]:
        async with self.locked(workspace_id, run_id) as graph:
            stored = self._w.runs[run_id]
            contexts: dict[str, StepContext] = {}
            for step_key in step_keys:
                step = stored.steps.get(step_key)
                if step is None:
                    continue
                answers = tuple(
                    (q.question, q.answer or "")
                    for q in sorted(stored.questions.values(), key=lambda q: q.created_at)
                    if q.step_key == step_key and q.status is GateStatus.ANSWERED
                )
                inputs = StepInputs(
                    prompt=step.prompt,
                    handoffs=tuple(
                        stored.handoffs[k] for k in step.depends_on if k in stored.handoffs
                    ),
                    answers=answers,
                )
                agent = self._w.agents.get((workspace_id, step.agent_code))
                contexts[step_key] = StepContext(inputs, agent)
            yield graph, contexts

    def _save(self, graph: RunGraph) -> None:
        if graph.ended:
            self._tx.ended.append(graph)
        stored = self._w.runs[graph.run.id]
        stored.run = copy.copy(graph.run)
        for key in graph.touched:
            stored.steps[key] = copy.copy(graph.steps[key])
        run = graph.run
        for approval in graph.approvals:
            stored.approvals[approval.id] = Approval(
                approval.id, run.workspace_id, run.id, approval.step_key, GateStatus.PENDING,
                self._tx.now,
            )  # fmt: skip
        for decision in graph.decisions:
            old = stored.approvals[decision.id]
            if old.status is not GateStatus.PENDING:
                raise Conflict("The approval was already decided.")
            stored.approvals[decision.id] = replace(
                old, status=decision.status, comment=decision.comment,
                decided_by=decision.decided_by, decided_at=self._tx.now,
            )  # fmt: skip
        for asked in graph.questions:
            stored.questions[asked.id] = Question(
                asked.id, run.workspace_id, run.id, asked.step_key, asked.question,
                GateStatus.PENDING, self._tx.now,
            )  # fmt: skip
        for answer in graph.answers:
            old_q = stored.questions[answer.id]
            if old_q.status is not GateStatus.PENDING:
                raise Conflict("The question was already answered.")
            stored.questions[answer.id] = replace(
                old_q, status=GateStatus.ANSWERED, answer=answer.answer,
                answered_by=answer.answered_by, answered_at=self._tx.now,
            )  # fmt: skip
        if graph.questions_closed:
            for qid, q in stored.questions.items():
                if q.status is GateStatus.PENDING:
                    stored.questions[qid] = replace(q, status=GateStatus.CANCELLED)
        for handoff in graph.handoffs:
            agent = stored.steps[handoff.step_key].agent_code
            stored.handoffs[handoff.step_key] = Handoff(
                handoff.step_key, agent, handoff.content, dict(handoff.metadata)
            )
        self._append(stored, graph.events)
        for dispatch in graph.dispatches:
            self._tx.send(
                JobMessage.step(run.workspace_id, run.id, dispatch.step_key),
                delay_seconds=dispatch.delay_seconds,
            )

    def _append(self, stored: StoredRun, events: Sequence[NewEvent]) -> None:
        for event in events:
            seq = len(stored.events) + 1
            stored.events.append(Event(seq, event.type.value, dict(event.payload), self._tx.now))

    async def append_tokens(
        self, workspace_id: UUID, run_id: UUID, step_key: str, attempt: int, text: str
    ) -> bool:
        token = NewEvent(EventType.STEP_TOKEN, {"step": step_key, "attempt": attempt, "text": text})
        return await self.append_step_events(workspace_id, run_id, step_key, attempt, [token])

    async def append_step_events(
        self,
        workspace_id: UUID,
        run_id: UUID,
        step_key: str,
        attempt: int,
        events: Sequence[NewEvent],
    ) -> bool:
        stored = self._stored(workspace_id, run_id)
        step = stored.steps.get(step_key)
        held = (
            step is not None
            and step.status is StepStatus.RUNNING
            and step.attempt == attempt
            and stored.run.status is not RunStatus.CANCELLED
        )
        if held:
            self._append(stored, list(events))
        return held

    async def get(self, workspace_id: UUID, run_id: UUID) -> Run:
        stored = self._stored(workspace_id, run_id)
        return _run_view(stored)

    async def list_runs(
        self,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]:
        runs = [
            _run_view(s, with_steps=False)
            for s in self._w.runs.values()
            if s.run.workspace_id == workspace_id
            and self._tx.sees(workspace_id)
            and (status is None or s.run.status is status)
            and (kind is None or s.run.kind is kind)
        ]
        return _page(runs, page, lambda r: (r.created_at, r.id), newest_first=True)

    async def events(self, workspace_id: UUID, run_id: UUID, after: int, limit: int) -> list[Event]:
        stored = self._stored(workspace_id, run_id)
        return [e for e in stored.events if e.seq > after][:limit]

    async def approvals(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]:
        rows = [a for a in self._gates("approvals", workspace_id) if status in (None, a.status)]
        return _page(rows, page, lambda a: (a.created_at, a.id), newest_first=False)

    async def questions(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]:
        rows = [q for q in self._gates("questions", workspace_id) if status in (None, q.status)]
        return _page(rows, page, lambda q: (q.created_at, q.id), newest_first=False)

    def _gates(self, kind: str, workspace_id: UUID) -> list[Any]:
        if not self._tx.sees(workspace_id):
            return []
        return [
            gate
            for s in self._w.runs.values()
            if s.run.workspace_id == workspace_id
            for gate in getattr(s, kind).values()
        ]

    async def approval(self, workspace_id: UUID, approval_id: UUID) -> Approval:
        found: list[Approval] = [
            a for a in self._gates("approvals", workspace_id) if a.id == approval_id
        ]
        if not found:
            raise NotFound("No such approval in this workspace.")
        return found[0]

    async def question(self, workspace_id: UUID, question_id: UUID) -> Question:
        found: list[Question] = [
            q for q in self._gates("questions", workspace_id) if q.id == question_id
        ]
        if not found:
            raise NotFound("No such question in this workspace.")
        return found[0]

    async def stale(self, queued_before_seconds: int, limit: int) -> list[StaleStep]:
        now = self._tx.now
        found = [
            StaleStep(s.run.workspace_id, s.run.id, step.key)
            for s in self._w.runs.values()
            for step in s.steps.values()
            if (
                step.status is StepStatus.QUEUED
                and step.queued_at is not None
                and step.queued_at < now - timedelta(seconds=queued_before_seconds)
            )
            or (
                step.status is StepStatus.RUNNING
                and step.lease_until is not None
                and step.lease_until < now
            )
        ]
        return found[:limit]


def _run_view(stored: StoredRun, *, with_steps: bool = True) -> Run:
    steps = sorted(stored.steps.values(), key=lambda s: s.position) if with_steps else []
    graph = RunGraph(stored.run, {s.key: s for s in steps})
    return graph.snapshot()


class FakeLedger:
    """Budgets per workspace (and per run); reservations held until settled or released."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    async def remaining(self, context: CallContext) -> Decimal | None:
        ws = context.workspace_id
        limits: list[Decimal] = []
        budget = self._w.budgets.get(ws, self._w.default_budget)
        if budget is not None:
            held = sum((a for w, _, a in self._w.held.values() if w == ws), Decimal(0))
            limits.append(budget - self._w.spent[ws] - held)
        if context.run_budget_usd is not None and context.run_id is not None:
            run_spent = sum(
                (
                    r.completion.cost_usd
                    for r in self._w.usage
                    if r.context.run_id == context.run_id
                ),
                Decimal(0),
            )
            run_held = sum(
                (a for _, r, a in self._w.held.values() if r == context.run_id), Decimal(0)
            )
            limits.append(context.run_budget_usd - run_spent - run_held)
        return max(Decimal(0), min(limits)) if limits else None

    async def reserve(self, context: CallContext, amount_usd: Decimal) -> Reservation:
        left = await self.remaining(context)
        if left is not None and amount_usd > left:
            raise BudgetExceeded("The budget cannot cover this model call.")
        reservation = Reservation(uuid.uuid4(), context.workspace_id, amount_usd)
        self._w.held[reservation.id] = (context.workspace_id, context.run_id, amount_usd)
        return reservation

    async def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        self._w.held.pop(reservation.id, None)
        self._w.spent[record.context.workspace_id] += record.completion.cost_usd
        self._w.usage.append(record)

    async def release(self, reservation: Reservation) -> None:
        self._w.held.pop(reservation.id, None)

    async def report(
        self, workspace_id: UUID, start: datetime, end: datetime, group_by: GroupBy | None
    ) -> UsageReport:
        rows = [r for r in self._w.usage if r.context.workspace_id == workspace_id]
        totals = UsageTotals(
            calls=len(rows),
            input_tokens=sum(r.completion.usage.input_tokens for r in rows),
            output_tokens=sum(r.completion.usage.output_tokens for r in rows),
            cost_usd=sum((r.completion.cost_usd for r in rows), Decimal(0)),
        )
        monthly = self._w.budgets.get(workspace_id, self._w.default_budget)
        budget = BudgetStatus(monthly, self._w.spent[workspace_id])
        return UsageReport(start, end, totals, [], budget)


class FakeMemories:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    def _visible(self, memory: Memory) -> bool:
        if not self._tx.sees(memory.workspace_id):
            return False
        actor = self._tx.actor
        shared = memory.scope is MemoryScope.WORKSPACE
        return actor is None or shared or memory.owner_id == actor.user_id

    async def add(
        self, workspace_id: UUID, owner_id: UUID, memories: Sequence[NewMemory]
    ) -> list[Memory]:
        added = []
        for new in memories:
            if new.scope is MemoryScope.WORKSPACE:
                self._tx.may_write(workspace_id, Role.OPERATOR)
            memory = Memory(
                id=uuid.uuid4(), workspace_id=workspace_id, scope=new.scope,
                owner_id=owner_id if new.scope is MemoryScope.USER else None,
                collection=new.collection, content=new.content, metadata=dict(new.metadata),
                embedding_model=new.embedding_model, confidence=1.0, feedback_score=0,
                access_count=0, created_at=self._tx.now, document_id=new.document_id,
            )  # fmt: skip
            self._w.memories[memory.id] = (memory, list(new.embedding))
            added.append(memory)
        return added

    async def list_memories(
        self, workspace_id: UUID, collection: Collection | None, page: PageRequest
    ) -> Page[Memory]:
        rows = [
            m
            for m, _ in self._w.memories.values()
            if m.workspace_id == workspace_id
            and self._visible(m)
            and collection in (None, m.collection)
        ]
        return _page(rows, page, lambda m: (m.created_at, m.id), newest_first=True)

    async def get(self, workspace_id: UUID, memory_id: UUID) -> Memory:
        found = self._w.memories.get(memory_id)
        if found is None or found[0].workspace_id != workspace_id or not self._visible(found[0]):
            raise NotFound("No such memory.")
        return found[0]

    async def delete(self, workspace_id: UUID, memory_id: UUID) -> bool:
        memory = await self.get(workspace_id, memory_id)
        needed = Role.OPERATOR if memory.scope is MemoryScope.WORKSPACE else Role.VIEWER
        if not self._tx.sees(workspace_id, needed):
            return False
        del self._w.memories[memory_id]
        return True

    async def feedback(self, workspace_id: UUID, memory_id: UUID, value: int) -> Memory:
        memory = await self.get(workspace_id, memory_id)
        self._w.votes[(memory_id, self._tx.me)] = value
        score = sum(v for (voted, _), v in self._w.votes.items() if voted == memory_id)
        updated = replace(memory, feedback_score=score)
        self._w.memories[memory_id] = (updated, self._w.memories[memory_id][1])
        return updated

    async def candidates(self, workspace_id: UUID, query: CandidateQuery) -> list[Candidate]:
        words = set(query.text.lower().split())
        found = []
        for memory, vector in self._w.memories.values():
            if memory.workspace_id != workspace_id or not self._visible(memory):
                continue
            if query.collections and memory.collection not in query.collections:
                continue
            text_rank = len(words & set(memory.content.lower().split())) / (len(words) or 1)
            found.append(Candidate(memory, _cosine(query.embedding, vector), text_rank))
        return found

    async def touch(self, workspace_id: UUID, memory_ids: Sequence[UUID]) -> None:
        for memory_id in memory_ids:
            if memory_id in self._w.memories:
                memory, vector = self._w.memories[memory_id]
                touched = replace(memory, access_count=memory.access_count + 1)
                self._w.memories[memory_id] = (touched, vector)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class FakeDocuments:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    async def create(
        self,
        workspace_id: UUID,
        title: str,
        text: str,
        *,
        owner_id: UUID | None = None,
        collection: Collection = Collection.DOCUMENTS,
    ) -> Document:
        self._tx.may_write(workspace_id, Role.VIEWER)
        owner = owner_id or self._tx.me
        document = Document(uuid.uuid4(), workspace_id, owner, title, DocumentStatus.PENDING,
                            0, self._tx.now, collection=collection)  # fmt: skip
        job = DocumentJob(document.id, workspace_id, DocumentStatus.PENDING)
        self._w.documents[document.id] = StoredDocument(document, job, text, self._tx.now)
        return document

    async def list_documents(self, workspace_id: UUID, page: PageRequest) -> Page[Document]:
        rows = [
            self._view(d)
            for d in self._w.documents.values()
            if d.document.workspace_id == workspace_id
            and d.document.collection is Collection.DOCUMENTS
            and (self._tx.actor is None or d.document.owner_id == self._tx.me)
        ]
        return _page(rows, page, lambda d: (d.created_at, d.id), newest_first=True)

    @staticmethod
    def _view(stored: StoredDocument) -> Document:
        return replace(stored.document, status=stored.job.status, error=stored.job.error)

    async def lock(self, workspace_id: UUID, document_id: UUID) -> DocumentJob | None:
        stored = self._w.documents.get(document_id)
        if stored is None or stored.document.workspace_id != workspace_id:
            return None
        return copy.copy(stored.job)

    async def save(self, job: DocumentJob, *, chunk_count: int | None = None) -> None:
        stored = self._w.documents[job.id]
        stored.job = copy.copy(job)
        stored.updated_at = self._tx.now
        if chunk_count is not None:
            stored.document = replace(stored.document, chunk_count=chunk_count)
        if job.status in (DocumentStatus.READY, DocumentStatus.FAILED):
            stored.text = None

    async def pending(self, document_id: UUID) -> PendingDocument:
        stored = self._w.documents[document_id]
        return PendingDocument(self._view(stored), stored.text or "")

    async def stale(self, older_than_seconds: int, limit: int) -> list[DocumentJob]:
        now = self._tx.now
        found = []
        for stored in self._w.documents.values():
            job = stored.job
            waiting = job.status is DocumentStatus.PENDING and stored.updated_at < now - timedelta(
                seconds=older_than_seconds
            )
            lost = (
                job.status is DocumentStatus.PROCESSING
                and job.lease_until is not None
                and (job.lease_until < now)
            )
            if waiting or lost:
                stored.updated_at = now
                found.append(copy.copy(job))
        return found[:limit]


@dataclass
class StoredConversation:
    conversation: Conversation
    messages: list[Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class FakeConversations:
    """Conversations are their creator's unless shared; participants (analysts and up) may
    append; the creator, or an admin for a shared one, may change or delete."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    def _visible(self, c: Conversation) -> bool:
        actor = self._tx.actor
        if actor is None:
            return True
        return self._tx.sees(c.workspace_id) and (c.shared or c.created_by == actor.user_id)

    def _may_change(self, c: Conversation) -> bool:
        actor = self._tx.actor
        if actor is None:
            return True
        own = c.created_by == actor.user_id and self._tx.sees(c.workspace_id, Role.ANALYST)
        return own or (c.shared and self._tx.sees(c.workspace_id, Role.ADMIN))

    def _stored(self, workspace_id: UUID, conversation_id: UUID) -> StoredConversation:
        stored = self._w.conversations.get(conversation_id)
        if (
            stored is None
            or stored.conversation.workspace_id != workspace_id
            or not self._visible(stored.conversation)
        ):
            raise NotFound("No such conversation in this workspace.")
        return stored

    def _view(self, stored: StoredConversation) -> Conversation:
        last = stored.messages[-1].created_at if stored.messages else None
        return replace(
            stored.conversation, message_count=len(stored.messages), last_message_at=last
        )

    async def create(self, conversation: Conversation) -> Conversation:
        self._tx.may_write(conversation.workspace_id, Role.ANALYST)
        self._w.conversations[conversation.id] = StoredConversation(conversation)
        return await self.get(conversation.workspace_id, conversation.id)

    async def get(self, workspace_id: UUID, conversation_id: UUID) -> Conversation:
        return self._view(self._stored(workspace_id, conversation_id))

    async def list_conversations(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: ConversationStatus | None = None,
        mode: ConversationMode | None = None,
        text: str | None = None,
    ) -> Page[Conversation]:
        words = set(text.lower().split()) if text else set()
        rows = [
            self._view(s)
            for s in self._w.conversations.values()
            if s.conversation.workspace_id == workspace_id
            and self._visible(s.conversation)
            and status in (None, s.conversation.status)
            and mode in (None, s.conversation.mode)
            and (not words or any(words & set(m.content.lower().split()) for m in s.messages))
        ]
        return _page(rows, page, lambda c: (c.created_at, c.id), newest_first=True)

    async def save(self, conversation: Conversation) -> Conversation:
        stored = self._stored(conversation.workspace_id, conversation.id)
        if not self._may_change(stored.conversation):
            raise Forbidden("Only its creator (or an admin, if it is shared) may change it.")
        if self._tx.actor is not None:  # a member changes title, status and sharing only
            conversation = replace(
                stored.conversation,
                title=conversation.title,
                status=conversation.status,
                shared=conversation.shared,
            )
        stored.conversation = replace(conversation, updated_at=self._tx.now)
        return self._view(stored)

    async def delete(self, workspace_id: UUID, conversation_id: UUID) -> bool:
        stored = self._stored(workspace_id, conversation_id)
        if not self._may_change(stored.conversation):
            return False
        del self._w.conversations[conversation_id]
        return True

    async def append(
        self,
        workspace_id: UUID,
        conversation_id: UUID,
        messages: Sequence[NewMessage] = (),
        events: Sequence[ConversationEvent] = (),
    ) -> list[Message]:
        stored = self._stored(workspace_id, conversation_id)
        if self._tx.actor is not None:
            self._tx.may_write(workspace_id, Role.ANALYST)
            if any(m.sender_kind is not SenderKind.USER for m in messages):
                raise Forbidden("Not allowed.")
        added = []
        for new in messages:
            message = Message(
                id=uuid.uuid4(), conversation_id=conversation_id,
                seq=len(stored.messages) + 1, sender_kind=new.sender_kind,
                sender_id=new.sender_id, type=new.type, content=new.content,
                created_at=self._tx.now, reply_to=new.reply_to,
                requires_user_response=new.requires_user_response, routing=new.routing,
                usage=new.usage, metadata=dict(new.metadata),
            )  # fmt: skip
            stored.messages.append(message)
            added.append(message)
        by_order = iter(added)
        for event in events:
            payload = dict(event.payload)
            if event.type is ConversationEventType.MESSAGE_NEW and "message_id" not in payload:
                posted = next(by_order, None)
                if posted is not None:
                    payload |= {"message_id": str(posted.id), "seq": posted.seq}
            seq = len(stored.events) + 1
            stored.events.append(Event(seq, event.type.value, payload, self._tx.now))
        return added

    async def messages(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Message]:
        stored = self._stored(workspace_id, conversation_id)
        return [m for m in stored.messages if m.seq > after][:limit]

    async def recent(self, workspace_id: UUID, conversation_id: UUID, limit: int) -> list[Message]:
        return self._stored(workspace_id, conversation_id).messages[-limit:]

    async def pending(self, workspace_id: UUID, conversation_id: UUID) -> list[Message]:
        stored = self._stored(workspace_id, conversation_id)
        answered = {m.reply_to for m in stored.messages if m.type is MessageType.USER_RESPONSE}
        return [m for m in stored.messages if m.requires_user_response and m.id not in answered]

    async def events(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Event]:
        stored = self._stored(workspace_id, conversation_id)
        return [e for e in stored.events if e.seq > after][:limit]

    async def delete_expired(self, limit: int) -> int:
        expired = [
            cid
            for cid, s in self._w.conversations.items()
            if (days := self._w.workspaces[s.conversation.workspace_id].conversation_retention_days)
            and s.conversation.created_at < self._tx.now - timedelta(days=days)
        ][:limit]
        for cid in expired:
            del self._w.conversations[cid]
        return len(expired)

    async def standing(
        self, workspace_id: UUID, day_start: datetime, week_start: datetime
    ) -> Standing | None:
        actor = self._tx.actor
        member = self._w.members.get(workspace_id, {}).get(actor.user_id) if actor else None
        if member is None:
            return None
        mine = [
            m
            for s in self._w.conversations.values()
            if s.conversation.workspace_id == workspace_id
            for m in s.messages
            if m.sender_kind is SenderKind.USER and m.sender_id == str(member.user_id)
        ]
        return Standing(
            member.role,
            member.account_kind,
            sum(1 for m in mine if m.created_at >= day_start),
            sum(1 for m in mine if m.created_at >= week_start and m.metadata.get("image_prompt")),
            await self._tx.ledger.remaining(CallContext(workspace_id, member.user_id)),
        )


class FakeTools:
    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    async def settings(self, workspace_id: UUID) -> ToolSettings:
        if not self._tx.sees(workspace_id):
            raise NotFound("No such workspace.")
        return self._w.tool_settings.get(workspace_id, ToolSettings())

    async def save_settings(
        self,
        workspace_id: UUID,
        *,
        fetch_hosts: Sequence[str],
        max_calls_per_run: int,
        max_spend_per_run_usd: Decimal,
    ) -> None:
        self._tx.may_write(workspace_id, Role.ADMIN)
        current = self._w.tool_settings.get(workspace_id, ToolSettings())
        self._w.tool_settings[workspace_id] = replace(
            current,
            fetch_hosts=tuple(fetch_hosts),
            max_calls_per_run=max_calls_per_run,
            max_spend_per_run_usd=max_spend_per_run_usd,
        )

    async def switch(self, workspace_id: UUID, agent_code: str, tool: str, enabled: bool) -> None:
        self._tx.may_write(workspace_id, Role.ADMIN)
        current = self._w.tool_settings.get(workspace_id, ToolSettings())
        switches = {**current.switches, (agent_code, tool): enabled}
        self._w.tool_settings[workspace_id] = replace(current, switches=switches)

    async def run_usage(self, workspace_id: UUID, run_id: UUID) -> tuple[int, Decimal]:
        stored = self._w.runs.get(run_id)
        calls = sum(1 for e in stored.events if e.type == "tool.called") if stored else 0
        spent = sum(
            (r.completion.cost_usd for r in self._w.usage
             if r.context.run_id == run_id and r.completion.provider == "tool"),
            Decimal(0),
        )  # fmt: skip
        return calls, spent

    async def mcp_servers(self, workspace_id: UUID) -> list[McpServer]:
        if not self._tx.sees(workspace_id):
            return []
        return sorted(
            (s for s in self._w.mcp_servers.values() if s.workspace_id == workspace_id),
            key=lambda s: s.name,
        )

    async def add_mcp_server(
        self, workspace_id: UUID, name: str, url: str, requires_approval: bool
    ) -> McpServer:
        self._tx.may_write(workspace_id, Role.ADMIN)
        if any(
            s.workspace_id == workspace_id and s.name == name for s in self._w.mcp_servers.values()
        ):
            raise Conflict(f"The workspace has an MCP server named {name!r}.")
        server = McpServer(uuid.uuid4(), workspace_id, name, url, requires_approval, self._tx.now)
        self._w.mcp_servers[server.id] = server
        return server

    async def remove_mcp_server(self, workspace_id: UUID, server_id: UUID) -> bool:
        self._tx.may_write(workspace_id, Role.ADMIN)
        server = self._w.mcp_servers.get(server_id)
        if server is None or server.workspace_id != workspace_id:
            return False
        del self._w.mcp_servers[server_id]
        return True


class FakeAudits:
    """Findings kept in the world; of the operational facts, only what the weekly reflection
    reads (activity from the usage rows) is modelled."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx = tx

    async def stuck_runs(self, quiet_for: timedelta) -> list[Flagged]:
        return []

    async def dead_steps(self) -> list[Flagged]:
        return []

    async def failed_documents(self, within: timedelta) -> list[Flagged]:
        return []

    async def deferred_steps(self, within: timedelta) -> list[Flagged]:
        return []

    async def provider_calls(self, within: timedelta) -> list[ProviderCalls]:
        return []

    async def spend(self, active_within: timedelta) -> list[WorkspaceSpend]:
        return []

    async def unprotected_tables(self, schemas: Sequence[str]) -> list[UnprotectedTable]:
        return []

    async def active_workspaces(self, within: timedelta) -> list[UUID]:
        return sorted({r.context.workspace_id for r in self._tx.world.usage})

    async def week_summary(self, workspace_id: UUID, within: timedelta) -> WeekSummary:
        rows = [r for r in self._tx.world.usage if r.context.workspace_id == workspace_id]
        calls: dict[str, int] = defaultdict(int)
        for r in rows:
            calls[r.context.agent_code or "-"] += 1
        return WeekSummary(
            workspace_id=workspace_id,
            runs_by_status={},
            failed_steps=0,
            calls_by_agent=dict(calls),
            cost_usd=sum((r.completion.cost_usd for r in rows), Decimal(0)),
            tokens=sum(
                r.completion.usage.input_tokens + r.completion.usage.output_tokens for r in rows
            ),
            conversations=0,
            memory_votes_up=0,
            memory_votes_down=0,
        )

    async def record(self, findings: Sequence[Finding]) -> None:
        if self._tx.actor is not None:
            raise Forbidden("Findings are written by the system.")
        now = self._tx.now
        self._tx.world.findings.extend(StoredFinding(uuid.uuid4(), f, now) for f in findings)

    async def list(
        self, workspace_id: UUID, page: PageRequest, severity: Severity | None = None
    ) -> Page[StoredFinding]:
        rows = [
            f
            for f in self._tx.world.findings
            if f.finding.workspace_id == workspace_id
            and self._tx.sees(workspace_id, Role.ADMIN)
            and (severity is None or f.finding.severity is severity)
        ]
        return _page(rows, page, lambda f: (f.created_at, f.id), newest_first=True)


class FakeCampaigns:
    """Campaigns as the policies have them: viewers read, analysts draft (and edit while
    planning), operators change any, admins delete; decisions are the system's."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx, self._w = tx, tx.world

    def _visible(self, workspace_id: UUID, campaign_id: UUID) -> Campaign:
        c = self._w.campaigns.get(campaign_id)
        if c is None or c.workspace_id != workspace_id or not self._tx.sees(workspace_id):
            raise NotFound("No such campaign in this workspace.")
        return c

    async def create(self, campaign: Campaign) -> Campaign:
        self._tx.may_write(campaign.workspace_id, Role.ANALYST)
        self._w.campaigns[campaign.id] = campaign
        return campaign

    async def get(self, workspace_id: UUID, campaign_id: UUID, *, lock: bool = False) -> Campaign:
        return self._visible(workspace_id, campaign_id)

    async def list_campaigns(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: CampaignStatus | None = None,
        objective_type: ObjectiveType | None = None,
        text: str | None = None,
    ) -> Page[Campaign]:
        rows = [
            c
            for c in self._w.campaigns.values()
            if c.workspace_id == workspace_id
            and self._tx.sees(workspace_id)
            and (status is None or c.status is status)
            and (objective_type is None or c.objective_type is objective_type)
            and (text is None or text.lower() in c.name.lower())
        ]
        return _page(rows, page, lambda c: (c.created_at, c.id), newest_first=True)

    async def save(self, campaign: Campaign, *, system: bool = False) -> None:
        old = self._visible(campaign.workspace_id, campaign.id)
        if old.status is not CampaignStatus.PLANNING:
            self._tx.may_write(campaign.workspace_id, Role.OPERATOR)
        self._tx.may_write(campaign.workspace_id, Role.ANALYST)
        if not system:
            campaign = replace(campaign, brief=old.brief, brief_run_id=old.brief_run_id)
        self._w.campaigns[campaign.id] = campaign

    async def delete(self, workspace_id: UUID, campaign_id: UUID) -> bool:
        self._visible(workspace_id, campaign_id)
        if not self._tx.sees(workspace_id, Role.ADMIN):
            return False
        del self._w.campaigns[campaign_id]
        for qid in [q.id for q in self._w.quests.values() if q.campaign_id == campaign_id]:
            del self._w.quests[qid]
        self._w.decisions = [d for d in self._w.decisions if d.campaign_id != campaign_id]
        return True

    async def add_quest(self, quest: Quest, created_by: UUID | None) -> Quest:
        self._visible(quest.workspace_id, quest.campaign_id)
        self._tx.may_write(quest.workspace_id, Role.ANALYST)
        self._w.quests[quest.id] = quest
        return quest

    async def get_quest(self, workspace_id: UUID, campaign_id: UUID, quest_id: UUID) -> Quest:
        self._visible(workspace_id, campaign_id)
        q = self._w.quests.get(quest_id)
        if q is None or q.campaign_id != campaign_id:
            raise NotFound("No such quest in this campaign.")
        return q

    async def save_quest(self, quest: Quest) -> None:
        self._tx.may_write(quest.workspace_id, Role.ANALYST)
        self._w.quests[quest.id] = quest

    async def quests(self, workspace_id: UUID, campaign_id: UUID) -> list[Quest]:
        self._visible(workspace_id, campaign_id)
        found = [q for q in self._w.quests.values() if q.campaign_id == campaign_id]
        return sorted(found, key=lambda q: (q.created_at, q.id))

    async def record(self, workspace_id: UUID, decisions: Sequence[Decision]) -> None:
        if self._tx.actor is not None:
            raise Forbidden("Decisions are the system's to record.")
        for i, d in enumerate(decisions):
            self._w.decisions.append(
                replace(
                    d,
                    id=d.id or uuid.uuid4(),
                    created_at=self._tx.now + timedelta(microseconds=len(self._w.decisions) + i),
                )
            )

    async def decisions(
        self, workspace_id: UUID, campaign_id: UUID, page: PageRequest
    ) -> Page[Decision]:
        self._visible(workspace_id, campaign_id)
        rows = [d for d in self._w.decisions if d.campaign_id == campaign_id]
        return _page(rows, page, _decision_key, newest_first=False)


def _decision_key(d: Decision) -> Cursor:
    assert d.created_at is not None and d.id is not None
    return d.created_at, d.id
