"""`PostgresRunRepository`: loads a run's graph under its row lock and stores what changed.

It decides nothing: every rule lives in `domain.run_graph`. Lock order, everywhere: the run
row first, the run's event counter last (just before commit), so events commit in number
order and a reader that has seen event n has seen every event before it. The run row is
locked `for no key update`: rows that reference the run (events, usage) are inserted with
a key-share lock on it, which must not wait for the graph's lock (a token append holding
the counter would otherwise deadlock with a graph change waiting for the counter).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from guildstack.adapters.postgres.database import returned_row
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.adapters.postgres.run_rows import (
    RUN_COLUMNS,
    STEP_COLUMNS,
    change_of,
    context_of,
    graph_of,
    new_step,
    to_approval,
    to_event,
    to_question,
    to_run,
    to_step,
)
from guildstack.domain.errors import NotFound
from guildstack.domain.jobs import JobMessage
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.run_graph import NewEvent, RunGraph
from guildstack.domain.runs import Approval, Event, Question, Run
from guildstack.domain.vocabulary import EventType, GateStatus, RunKind, RunStatus, StepStatus
from guildstack.ports.event_feed import run_log
from guildstack.ports.runs import StaleStep, StepContext

if TYPE_CHECKING:
    from guildstack.adapters.postgres.uow import PostgresTx

_NO_RUN = "No such run in this workspace."
G = TypeVar("G", Approval, Question)


class PostgresRunRepository:
    def __init__(self, tx: PostgresTx) -> None:
        self._tx = tx
        self._conn = tx.conn

    # The graph -----------------------------------------------------------------------------

    async def add(self, graph: RunGraph) -> Run:
        """The run, its event counter, its steps and its first events: sent together, read
        back once (a pipeline: errors surface at its end, still inside this call)."""
        r = graph.run
        async with self._conn.pipeline():
            await self._conn.execute(
                "insert into public.runs (id, workspace_id, created_by, kind, title, input,"
                " status, budget_usd, created_at, updated_at, context)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (r.id, r.workspace_id, r.created_by, r.kind, r.title, r.input, r.status,
                 r.budget_usd, r.created_at, r.updated_at, Jsonb(r.context)),
            )  # fmt: skip
            await self._conn.execute(
                "insert into public.event_counters (stream_id, workspace_id) values (%s, %s)",
                (r.id, r.workspace_id),
            )
            await self._conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                " prompt, depends_on, requires_approval, on_reject, status, queued_at,"
                " attempt, lease_until, started_at)"
                " select %s, x.key, %s, x.position, x.agent_code, x.prompt, x.depends_on,"
                " x.requires_approval, x.on_reject, x.status, x.queued_at, x.attempt,"
                " x.lease_until, x.started_at"
                " from jsonb_to_recordset(%s::jsonb) as x(key text, position int,"
                " agent_code text, prompt text, depends_on text[], requires_approval boolean,"
                " on_reject text, status text, queued_at timestamptz, attempt int,"
                " lease_until timestamptz, started_at timestamptz)",
                (r.id, r.workspace_id, json.dumps([new_step(s) for s in graph.steps.values()])),
            )
            # A run nobody can be waiting on yet: its first events are read from Postgres.
            await self._save(graph, publish=False)
        return graph.snapshot()

    @asynccontextmanager
    async def locked(self, workspace_id: UUID, run_id: UUID) -> AsyncIterator[RunGraph]:
        loaded = await self._load(workspace_id, run_id, None)
        graph = graph_of(loaded)
        yield graph
        await self._save(graph)

    @asynccontextmanager
    async def claiming(
        self, workspace_id: UUID, run_id: UUID, step_keys: Sequence[str]
    ) -> AsyncIterator[tuple[RunGraph, Mapping[str, StepContext]]]:
        loaded = await self._load(workspace_id, run_id, list(step_keys))
        graph = graph_of(loaded)
        # The claim also read the budget under its lock: the steps' reservations, made in
        # this transaction, are checked against these figures without reading them again.
        self._tx.ledger.holding(workspace_id, run_id, loaded["budget"])
        yield graph, {key: context_of(claim) for key, claim in loaded["claims"].items()}
        await self._save(graph)

    async def _load(
        self, workspace_id: UUID, run_id: UUID, steps: list[str] | None
    ) -> dict[str, Any]:
        await self._tx.flush()  # a claim reads the ledger
        cur = await self._conn.execute(
            "select private.load_run_graph(%s, %s, %s) as graph", (workspace_id, run_id, steps)
        )
        loaded: dict[str, Any] | None = (await returned_row(cur))["graph"]
        if loaded is None:
            raise NotFound(_NO_RUN)
        return loaded

    async def _save(self, graph: RunGraph, *, publish: bool = True) -> None:
        """Write back what the graph changed, in one call; then queue its dispatches. Its
        result is not read (in a pipelined transaction, not waited for): a gate decided or
        answered twice raises a conflict in the database."""
        change = change_of(graph)
        # The ledger's writes of this transaction (a reservation, a settlement) go with it.
        change["ledger"], writes = list(self._tx.ledger_writes), self._tx.ledger_writes
        writes.clear()
        await self._conn.execute("select private.save_run_graph(%s::jsonb)", (json.dumps(change),))
        run = graph.run
        if publish and change["events"] and self._tx.feeding:
            await self._log_for_feed(run.id, change["events"])
        for dispatch in graph.dispatches:
            message = JobMessage.step(run.workspace_id, run.id, dispatch.step_key)
            self._tx.send(message, delay_seconds=dispatch.delay_seconds)
        if graph.ended:
            self._tx.ended.append(graph)

    async def _log_for_feed(self, run_id: UUID, events: list[dict[str, Any]]) -> None:
        """After the commit, `events` (the last ones numbered in this transaction) go to the
        feed. Their numbers come from the counter, read now and answered with the commit:
        a pipelined transaction does not wait for it; the counter row is this
        transaction's until then, so what it reads is this change's last number."""
        counter = await self._conn.execute(
            "select last_seq, now() as at from public.event_counters where stream_id = %s",
            (run_id,),
        )

        async def logged() -> list[Event]:
            row = await counter.fetchone()
            if row is None:
                return []
            base = row["last_seq"] - len(events)
            return [
                Event(base + i, e["type"], e["payload"], row["at"]) for i, e in enumerate(events, 1)
            ]

        self._tx.logged.append((run_log(run_id), logged))

    async def _append(self, workspace_id: UUID, run_id: UUID, events: Sequence[NewEvent]) -> int:
        """Number and insert events in one statement; the counter row stays locked until
        commit. Returns how many were written (0 when the counter row is not visible)."""
        if not events:
            return 0
        cur = await self._conn.execute(
            """
            with counter as (
                update public.event_counters set last_seq = last_seq + %(n)s
                where stream_id = %(run)s returning last_seq - %(n)s as base
            )
            insert into public.events (workspace_id, run_id, seq, type, payload)
            select %(ws)s, %(run)s, counter.base + e.ord, e.type, e.payload
            from counter, unnest(%(types)s::text[], %(payloads)s::jsonb[])
                 with ordinality as e(type, payload, ord)
            returning seq, created_at
            """,
            {
                "n": len(events),
                "run": run_id,
                "ws": workspace_id,
                "types": [e.type.value for e in events],
                "payloads": [json.dumps(dict(e.payload)) for e in events],
            },
        )
        rows = await cur.fetchall()
        if rows and self._tx.feeding:
            numbered = [
                Event(r["seq"], e.type.value, dict(e.payload), r["created_at"])
                for r, e in zip(sorted(rows, key=lambda r: r["seq"]), events, strict=True)
            ]

            async def logged() -> list[Event]:
                return numbered

            self._tx.logged.append((run_log(run_id), logged))
        return len(rows)

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
        cur = await self._conn.execute(
            "select 1 from public.steps s join public.runs r on r.id = s.run_id"
            " where s.run_id = %s and s.workspace_id = %s and s.key = %s"
            " and s.status = %s and s.attempt = %s and r.status <> %s",
            (run_id, workspace_id, step_key, StepStatus.RUNNING, attempt, RunStatus.CANCELLED),
        )
        if await cur.fetchone() is None:
            return False
        return await self._append(workspace_id, run_id, events) == len(events)

    # Reads ---------------------------------------------------------------------------------

    async def get(self, workspace_id: UUID, run_id: UUID) -> Run:
        cur = await self._conn.execute(
            f"select {RUN_COLUMNS} from public.runs r where r.id = %s and r.workspace_id = %s",  # noqa: S608
            (run_id, workspace_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(_NO_RUN)
        cur = await self._conn.execute(
            f"select {STEP_COLUMNS} from public.steps s where s.run_id = %s order by s.position",  # noqa: S608
            (run_id,),
        )
        return to_run(row, tuple(to_step(r) for r in await cur.fetchall()))

    async def list_runs(
        self,
        workspace_id: UUID,
        page: PageRequest,
        status: RunStatus | None = None,
        kind: RunKind | None = None,
    ) -> Page[Run]:
        return await fetch_page(
            self._conn,
            f"select {RUN_COLUMNS} from public.runs r where r.workspace_id = %(ws)s"  # noqa: S608
            " and (%(status)s::text is null or r.status = %(status)s)"
            " and (%(kind)s::text is null or r.kind = %(kind)s)",
            {"ws": workspace_id, "status": status, "kind": kind},
            page,
            to_run,
            lambda r: (r.created_at, r.id),
            key=("r.created_at", "r.id"),
        )

    async def events(self, workspace_id: UUID, run_id: UUID, after: int, limit: int) -> list[Event]:
        cur = await self._conn.execute(
            "select e.seq, e.type, e.payload, e.created_at, r.id as run"
            " from public.runs r left join public.events e on e.run_id = r.id and e.seq > %s"
            " where r.id = %s and r.workspace_id = %s order by e.seq limit %s",
            (after, run_id, workspace_id, limit),
        )
        rows = await cur.fetchall()
        if not rows:
            raise NotFound(_NO_RUN)
        return [to_event(r) for r in rows if r["seq"] is not None]

    async def approvals(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Approval]:
        return await self._gates("approvals", workspace_id, status, page, to_approval)

    async def questions(
        self, workspace_id: UUID, status: GateStatus | None, page: PageRequest
    ) -> Page[Question]:
        return await self._gates("questions", workspace_id, status, page, to_question)

    async def _gates(
        self,
        table: str,
        workspace_id: UUID,
        status: GateStatus | None,
        page: PageRequest,
        to_item: Callable[[DictRow], G],
    ) -> Page[G]:
        return await fetch_page(
            self._conn,
            f"select * from public.{table} where workspace_id = %(ws)s"  # noqa: S608 - one of two tables
            " and (%(status)s::text is null or status = %(status)s)",
            {"ws": workspace_id, "status": status},
            page,
            to_item,
            lambda g: (g.created_at, g.id),
            newest_first=False,
        )

    async def approval(self, workspace_id: UUID, approval_id: UUID) -> Approval:
        return to_approval(await self._gate("approvals", workspace_id, approval_id))

    async def question(self, workspace_id: UUID, question_id: UUID) -> Question:
        return to_question(await self._gate("questions", workspace_id, question_id))

    async def _gate(self, table: str, workspace_id: UUID, gate_id: UUID) -> dict[str, Any]:
        cur = await self._conn.execute(
            f"select * from public.{table} where id = %s and workspace_id = %s",  # noqa: S608
            (gate_id, workspace_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No such {table[:-1]} in this workspace.")
        return dict(row)

    async def stale(self, queued_before_seconds: int, limit: int) -> list[StaleStep]:
        cur = await self._conn.execute(
            "select workspace_id, run_id, key from public.steps"
            " where (status = %s and queued_at < now() - make_interval(secs => %s))"
            " or (status = %s and lease_until < now())"
            " order by queued_at nulls first limit %s",
            (StepStatus.QUEUED, queued_before_seconds, StepStatus.RUNNING, limit),
        )
        return [StaleStep(r["workspace_id"], r["run_id"], r["key"]) for r in await cur.fetchall()]
