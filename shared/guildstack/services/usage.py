"""Usage reports: tokens and cost over a window, grouped, with the monthly budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.usage import GroupBy, UsageReport
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized

MAX_WINDOW = timedelta(days=366)


class UsageService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def report(
        self,
        actor: Principal,
        workspace_id: UUID,
        start: datetime | None,
        end: datetime | None,
        group_by: GroupBy | None,
        *,
        now: datetime | None = None,
    ) -> UsageReport:
        """Defaults: from the first of this month (UTC) until now."""
        now = now or datetime.now(UTC)
        end = _aware(end) if end else now
        start = (
            _aware(start)
            if start
            else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        )
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.READ_USAGE)
            if start >= end:
                raise InvalidInput(
                    "`from` must be before `to`.",
                    [{"loc": ["query", "from"], "msg": "after to", "type": "value_error"}],
                )
            if end - start > MAX_WINDOW:
                raise InvalidInput("A usage window spans at most 366 days.")
            return await tx.ledger.report(workspace_id, start, end, group_by)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
