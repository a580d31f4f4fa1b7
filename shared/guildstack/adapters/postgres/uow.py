"""`PostgresUnitOfWork`: one transaction per use case, its repositories, and the outbox.

Repositories are made on first use and bound to the transaction's connection. Messages the
change produced are sent after the commit, grouped by delay; a failed send is logged and
left to the sweeper (the work is queued in the database, so nothing is lost). Events the
change logged are then copied to the hot event feed (see `ports.event_feed`); a failed copy
is logged and costs readers only their next Postgres read.

System transactions (the engine's) are pipelined (see `database`): their repositories read
results only where they need them, so a write costs no round trip of its own, and they never
rely on a cursor's `rowcount` before a read. Member transactions that only read
(`reading`) are pipelined too: their start travels with their first read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from guildstack.adapters.postgres.database import Connection, PostgresDatabase
from guildstack.domain.jobs import JobMessage
from guildstack.domain.principal import Principal
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.runs import Event
from guildstack.domain.vocabulary import RunKind
from guildstack.observability import logger
from guildstack.ports.event_feed import EventFeed
from guildstack.ports.runs import StepQueue
from guildstack.ports.uow import RunFinisher, RunFinishers

if TYPE_CHECKING:
    from guildstack.adapters.postgres.agents import PostgresAgentRepository
    from guildstack.adapters.postgres.audits import PostgresAuditRepository
    from guildstack.adapters.postgres.campaigns import PostgresCampaignRepository
    from guildstack.adapters.postgres.conversations import PostgresConversationRepository
    from guildstack.adapters.postgres.memory import (
        PostgresDocumentRepository,
        PostgresMemoryRepository,
    )
    from guildstack.adapters.postgres.runs import PostgresRunRepository
    from guildstack.adapters.postgres.tools import PostgresToolRepository
    from guildstack.adapters.postgres.usage import PostgresUsageLedger
    from guildstack.adapters.postgres.workspaces import PostgresWorkspaceRepository


class PostgresTx:
    def __init__(
        self,
        conn: Connection,
        actor: Principal | None,
        now: datetime | Callable[[], datetime],
        *,
        feeding: bool = False,
    ) -> None:
        self.conn = conn
        self._actor = actor
        self._now = now
        self.outbox: dict[int, list[JobMessage]] = defaultdict(list)
        # The ledger's writes not sent yet: with the run graph's save, or before commit.
        self.ledger_writes: list[dict[str, Any]] = []
        # Runs this transaction ended: their kind's finisher runs before the commit.
        self.ended: list[RunGraph] = []
        # Events logged, by log name: what they are is read after the commit (a pipelined
        # transaction learns their numbers only then).
        self.logged: list[tuple[str, Callable[[], Awaitable[list[Event]]]]] = []
        # Whether there is a feed to copy them to (without one nothing is kept for it).
        self.feeding = feeding

    @property
    def actor(self) -> Principal | None:
        return self._actor

    @property
    def now(self) -> datetime:
        if not isinstance(self._now, datetime):
            self._now = self._now()
        return self._now

    def send(self, *messages: JobMessage, delay_seconds: int = 0) -> None:
        self.outbox[delay_seconds].extend(messages)

    @cached_property
    def workspaces(self) -> PostgresWorkspaceRepository:
        from guildstack.adapters.postgres.workspaces import PostgresWorkspaceRepository

        return PostgresWorkspaceRepository(self.conn, self._actor)

    @cached_property
    def agents(self) -> PostgresAgentRepository:
        from guildstack.adapters.postgres.agents import PostgresAgentRepository

        return PostgresAgentRepository(self.conn, self._actor)

    @cached_property
    def runs(self) -> PostgresRunRepository:
        from guildstack.adapters.postgres.runs import PostgresRunRepository

        return PostgresRunRepository(self)

    @cached_property
    def ledger(self) -> PostgresUsageLedger:
        from guildstack.adapters.postgres.usage import PostgresUsageLedger

        return PostgresUsageLedger(self.conn, self.ledger_writes, member=self._actor is not None)

    async def flush(self) -> None:
        """Send what is kept for later (the ledger's writes) before the transaction ends."""
        from guildstack.adapters.postgres.usage import apply_ledger

        await apply_ledger(self.conn, self.ledger_writes)

    @cached_property
    def conversations(self) -> PostgresConversationRepository:
        from guildstack.adapters.postgres.conversations import PostgresConversationRepository

        return PostgresConversationRepository(
            self.conn, member=self._actor is not None, logged=self.logged if self.feeding else None
        )

    @cached_property
    def campaigns(self) -> PostgresCampaignRepository:
        from guildstack.adapters.postgres.campaigns import PostgresCampaignRepository

        return PostgresCampaignRepository(self.conn)

    @cached_property
    def memories(self) -> PostgresMemoryRepository:
        from guildstack.adapters.postgres.memory import PostgresMemoryRepository

        return PostgresMemoryRepository(self.conn, self._actor)

    @cached_property
    def documents(self) -> PostgresDocumentRepository:
        from guildstack.adapters.postgres.memory import PostgresDocumentRepository

        return PostgresDocumentRepository(self.conn, self._actor)

    @cached_property
    def tools(self) -> PostgresToolRepository:
        from guildstack.adapters.postgres.tools import PostgresToolRepository

        return PostgresToolRepository(self.conn)

    @cached_property
    def audits(self) -> PostgresAuditRepository:
        from guildstack.adapters.postgres.audits import PostgresAuditRepository

        return PostgresAuditRepository(self.conn)


class PostgresUnitOfWork:
    def __init__(
        self,
        db: PostgresDatabase,
        queue: StepQueue | None = None,
        finishers: RunFinishers | None = None,
        feed: EventFeed | None = None,
    ) -> None:
        self._db = db
        self._queue = queue
        self.finishers: dict[RunKind, RunFinisher] = dict(finishers or {})
        self._feed = feed

    def __call__(self, actor: Principal) -> AbstractAsyncContextManager[PostgresTx]:
        return self._transaction(actor)

    def reading(self, actor: Principal) -> AbstractAsyncContextManager[PostgresTx]:
        """A member transaction that only reads, pipelined (its `begin` and claims go with
        its first read). Reads see their results where they are, so nothing else about the
        transaction changes; a write in it would be a mistake (its error, or its rowcount,
        would be known only at the next read)."""
        return self._pipelined(actor.claims, actor)

    def system(self, reason: str) -> AbstractAsyncContextManager[PostgresTx]:
        logger.debug("system transaction", extra={"reason": reason})
        return self._pipelined(None, None)

    @asynccontextmanager
    async def _transaction(self, actor: Principal) -> AsyncIterator[PostgresTx]:
        async with self._db.begin(actor.claims) as (conn, now):
            tx = PostgresTx(conn, actor, now, feeding=self._feed is not None)
            yield tx
            await self._finish_runs(tx)
            await tx.flush()
        await self._after_commit(tx)

    @asynccontextmanager
    async def _pipelined(
        self, claims: Mapping[str, Any] | None, actor: Principal | None
    ) -> AsyncIterator[PostgresTx]:
        async with self._db.pipelined(claims) as (conn, clock):
            tx = PostgresTx(conn, actor, clock, feeding=self._feed is not None)
            yield tx
            await self._finish_runs(tx)
            await tx.flush()
        await self._after_commit(tx)

    async def _finish_runs(self, tx: PostgresTx) -> None:
        for graph in tx.ended:
            finisher = self.finishers.get(graph.run.kind)
            if finisher is not None:
                await finisher.finished(tx, graph)

    async def _after_commit(self, tx: PostgresTx) -> None:
        """The feed and the queue, at once: neither waits for the other's round trip."""
        if self._feed is not None and tx.logged:
            await asyncio.gather(self._publish(tx), self._send_all(tx))
        else:
            await self._send_all(tx)

    async def _publish(self, tx: PostgresTx) -> None:
        if self._feed is None:
            return
        for log, logged in tx.logged:
            try:
                events = await logged()
                await self._feed.publish(log, events)
            except Exception:  # noqa: BLE001 - the events are committed; readers poll Postgres
                logger.warning(
                    "events not copied to the feed; readers will read them from Postgres",
                    extra={"log": log.split(":", 1)[0]},
                    exc_info=True,
                )

    async def _send_all(self, tx: PostgresTx) -> None:
        for delay, messages in tx.outbox.items():
            await self._send(messages, delay)

    async def _send(self, messages: list[JobMessage], delay: int) -> None:
        if not messages:
            return
        try:
            if self._queue is None:
                raise RuntimeError("no queue is configured")
            await self._queue.send(messages, delay_seconds=delay)
        except Exception:  # noqa: BLE001 - the work stays queued in the database; the sweeper re-sends it
            logger.warning(
                "messages not sent after commit; the sweeper will send them again",
                extra={"messages": len(messages)},
                exc_info=True,
            )
