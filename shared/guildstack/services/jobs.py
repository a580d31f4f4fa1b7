"""Background jobs by kind: one dispatch table for the worker and one for the dead-letter
queue, and the sweeper that repairs what a crash left behind.

Every job kind follows the same leased-job rules (`domain.jobs`): the worker's handler
claims it, a failure raises so the queue redelivers, the dead-letter handler ends it for
good, and the sweeper re-sends work whose message may be lost or whose worker died.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from guildstack.domain.errors import NotFound
from guildstack.domain.jobs import JobMessage
from guildstack.domain.vocabulary import JobKind
from guildstack.observability import metrics
from guildstack.ports.uow import UnitOfWork
from guildstack.services.engine import StepEngine
from guildstack.services.ingestion import DocumentIngestion

Handler = Callable[[JobMessage], Awaitable[object]]


class Jobs:
    """What each kind of message means to the worker and to the dead-letter queue."""

    def __init__(self, uow: UnitOfWork, engine: StepEngine, documents: DocumentIngestion) -> None:
        self._uow = uow
        self.work_table: Mapping[JobKind, Handler] = {
            JobKind.STEP: engine.handle,
            JobKind.DOCUMENT: documents.ingest,
        }
        self.bury_table: Mapping[JobKind, Callable[[JobMessage], Awaitable[bool]]] = {
            JobKind.STEP: self._bury_step,
            JobKind.DOCUMENT: documents.bury,
        }

    async def work(self, message: JobMessage) -> None:
        """Do the job; raises when this attempt failed and the queue should redeliver."""
        await self.work_table[message.kind](message)

    async def bury(self, message: JobMessage) -> bool:
        """The queue gave up on the message: end its job for good. False when it had
        already finished (nothing to do)."""
        buried = await self.bury_table[message.kind](message)
        if buried:
            metrics.add_metric(name="JobsDead", unit="Count", value=1)
        return buried

    async def _bury_step(self, message: JobMessage) -> bool:
        """The step dead, its run failed; False when it finished, or its run is gone."""
        try:
            async with self._uow.system("dead-letter a step") as tx:
                async with tx.runs.locked(message.workspace_id, message.job_id) as graph:
                    return graph.bury(message.step_key or "", now=tx.now)
        except NotFound:
            return False


class Sweeper:
    """Every few minutes: re-send steps queued without a live message (a crash between
    commit and send) and steps whose worker died holding the lease; the same for documents.
    A step of a cancelled run is skipped instead, so nothing stays queued forever."""

    def __init__(
        self,
        uow: UnitOfWork,
        documents: DocumentIngestion,
        *,
        resend_after_seconds: int,
        batch: int = 500,
    ) -> None:
        self._uow = uow
        self._documents = documents
        self._resend_after = resend_after_seconds
        self._batch = batch

    async def sweep(self) -> int:
        """How many jobs were sent again (or settled, for steps of cancelled runs)."""
        async with self._uow.system("find stale steps") as tx:
            stale = await tx.runs.stale(self._resend_after, self._batch)
        repaired = 0
        for step in stale:
            async with self._uow.system("repair a stale step") as tx:
                async with tx.runs.locked(step.workspace_id, step.run_id) as graph:
                    repaired += graph.requeue_stale(step.step_key, now=tx.now)
        documents = await self._documents.stale(self._resend_after, self._batch)
        if documents:
            async with self._uow.system("re-send stale documents") as tx:
                tx.send(*documents)
        total = repaired + len(documents)
        if total:
            metrics.add_metric(name="MessagesResent", unit="Count", value=total)
        return total
