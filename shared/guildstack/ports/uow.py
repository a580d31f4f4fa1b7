"""The unit of work: one transaction per use case, with its repositories and its outbox.

`async with uow(actor) as tx:` acts for a signed-in user (row-level security applies to
every statement); `async with uow.system(reason) as tx:` acts as the system (the engine,
workers, schedules) and says why. Either way the membership check and the action share the
transaction, and the messages the change produced are sent only after it has committed (a
failed send leaves the work queued in the database for the sweeper to send again).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from guildstack.domain.jobs import JobMessage
from guildstack.domain.principal import Principal
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.vocabulary import RunKind
from guildstack.ports.agents import AgentRepository
from guildstack.ports.audits import AuditRepository
from guildstack.ports.campaigns import CampaignRepository
from guildstack.ports.conversations import ConversationRepository
from guildstack.ports.memory import DocumentRepository, MemoryRepository
from guildstack.ports.runs import RunRepository
from guildstack.ports.tools import ToolRepository
from guildstack.ports.usage import UsageLedger
from guildstack.ports.workspaces import WorkspaceRepository


class Tx(Protocol):
    @property
    def actor(self) -> Principal | None:
        """Who the transaction acts for; None for the system."""
        ...

    @property
    def now(self) -> datetime:
        """The transaction's time (the database's clock; one value for the whole change). A
        system transaction learns it with its first read: read before asking."""
        ...

    @property
    def workspaces(self) -> WorkspaceRepository: ...

    @property
    def agents(self) -> AgentRepository: ...

    @property
    def runs(self) -> RunRepository: ...

    @property
    def ledger(self) -> UsageLedger: ...

    @property
    def conversations(self) -> ConversationRepository: ...

    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def memories(self) -> MemoryRepository: ...

    @property
    def documents(self) -> DocumentRepository: ...

    @property
    def tools(self) -> ToolRepository: ...

    @property
    def audits(self) -> AuditRepository: ...

    def send(self, *messages: JobMessage, delay_seconds: int = 0) -> None:
        """Queue messages to send once the transaction has committed."""
        ...


class RunFinisher(Protocol):
    async def finished(self, tx: Tx, graph: RunGraph) -> None:
        """The run just ended (succeeded, failed or was cancelled) in this transaction: what
        the area that started it does about that, in the same transaction."""
        ...


# The unit of work calls the finisher of a run's kind for each run a transaction ended, just
# before it commits. Only areas that start runs of their own kind register one (chat).
RunFinishers = Mapping[RunKind, RunFinisher]


class UnitOfWork(Protocol):
    def __call__(self, actor: Principal) -> AbstractAsyncContextManager[Tx]:
        """A transaction acting for `actor` (row-level security applies)."""
        ...

    def reading(self, actor: Principal) -> AbstractAsyncContextManager[Tx]:
        """As calling it, for a use case that only reads: where the store can, the
        transaction's start travels with its first read (one round trip fewer)."""
        ...

    def system(self, reason: str) -> AbstractAsyncContextManager[Tx]:
        """A transaction acting as the system (bypasses row-level security); `reason` is
        logged."""
        ...
