"""What the self-audit reads (operational facts, as the system) and the findings it keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.audits import Finding, Severity, StoredFinding
from guildstack.domain.paging import Page, PageRequest


@dataclass(frozen=True)
class Flagged:
    """Rows of one workspace a check flagged: how many, and a few of their ids."""

    workspace_id: UUID
    count: int
    sample: tuple[str, ...]


@dataclass(frozen=True)
class ProviderCalls:
    provider: str
    calls: int
    attempts: int


@dataclass(frozen=True)
class WorkspaceSpend:
    workspace_id: UUID
    budget_usd: Decimal | None
    spent_usd: Decimal
    active_users: int


@dataclass(frozen=True)
class UnprotectedTable:
    schema: str
    table: str
    rls_enabled: bool
    rls_forced: bool
    policies: int


@dataclass(frozen=True)
class WeekSummary:
    """What a workspace did in the week: the weekly reflection's input."""

    workspace_id: UUID
    runs_by_status: dict[str, int]
    failed_steps: int
    calls_by_agent: dict[str, int]
    cost_usd: Decimal
    tokens: int
    conversations: int
    memory_votes_up: int
    memory_votes_down: int
    sample_errors: tuple[str, ...] = field(default_factory=tuple)


class QueueDepth(Protocol):
    async def depth(self) -> int:
        """How many messages wait in the queue (approximately, as SQS counts)."""
        ...


class AuditRepository(Protocol):
    # Facts (system transactions) -------------------------------------------------------------
    # Windows are durations back from the transaction's time (read it after the first fact).
    async def stuck_runs(self, quiet_for: timedelta) -> list[Flagged]:
        """Runs in flight (queued or running) with no event for `quiet_for`."""
        ...

    async def dead_steps(self) -> list[Flagged]:
        """Steps left dead (nobody retried them) in runs that were not cancelled."""
        ...

    async def failed_documents(self, within: timedelta) -> list[Flagged]: ...

    async def deferred_steps(self, within: timedelta) -> list[Flagged]:
        """Steps deferred within the window (every provider's circuit breaker was open)."""
        ...

    async def provider_calls(self, within: timedelta) -> list[ProviderCalls]: ...

    async def spend(self, active_within: timedelta) -> list[WorkspaceSpend]:
        """Each workspace's spend this month and its members active within the window."""
        ...

    async def unprotected_tables(self, schemas: Sequence[str]) -> list[UnprotectedTable]:
        """Tables of `schemas` without enabled and forced row-level security and a policy."""
        ...

    async def active_workspaces(self, within: timedelta) -> list[UUID]: ...

    async def week_summary(self, workspace_id: UUID, within: timedelta) -> WeekSummary: ...

    # Findings --------------------------------------------------------------------------------
    async def record(self, findings: Sequence[Finding]) -> None:
        """Store findings (system transactions only)."""
        ...

    async def list(
        self, workspace_id: UUID, page: PageRequest, severity: Severity | None = None
    ) -> Page[StoredFinding]:
        """A workspace's findings, newest first (row-level security: admins only)."""
        ...
