"""Retention: conversations older than their workspace keeps them are deleted (messages
and events go with them), in batches, as the system."""

from __future__ import annotations

from guildstack.observability import metrics
from guildstack.ports.uow import UnitOfWork

BATCH = 500


class Retention:
    def __init__(self, uow: UnitOfWork, *, batch: int = BATCH) -> None:
        self._uow = uow
        self._batch = batch

    async def sweep(self) -> int:
        """How many conversations were deleted (batch by batch, until none is left)."""
        total = 0
        while True:
            async with self._uow.system("delete conversations past retention") as tx:
                deleted = await tx.conversations.delete_expired(self._batch)
            total += deleted
            if deleted < self._batch:
                break
        metrics.add_metric(name="ConversationsExpired", unit="Count", value=total)
        return total
