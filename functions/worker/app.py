"""WorkerFunction: executes the jobs on StepsQueue (run steps, document ingestion).

Every record of a batch starts at once on the process's loop; each sets its own retry
backoff the moment it fails (never waiting for slower records of the batch), and
Powertools' `BatchProcessor` reports the failed records (`ReportBatchItemFailures`) so SQS
redelivers only those. A batch whose every record failed is still a partial-failure
response, not a function error. A body that is not a job message is logged and
acknowledged: redelivering it could never help.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from guildstack.bootstrap import Container
from guildstack.domain.jobs import JobMessage
from guildstack.observability import logger
from guildstack.runtime import Handler, background
from guildstack.services.engine import StepAttemptFailed

MAX_BACKOFF_SECONDS = 900


async def work(container: Container, message: JobMessage, record: dict[str, Any]) -> None:
    """Do one job; on failure, set the message's backoff at once, then raise."""
    try:
        await container.jobs.work(message)
    except Exception as exc:
        backoff = _backoff(container, exc, record)
        if backoff > 0:
            try:
                await container.step_queue.delay(record["receiptHandle"], backoff)
            except Exception:  # noqa: BLE001 - without the backoff the queue's timeout applies
                logger.warning("could not set the retry backoff on a message")
        raise


def _backoff(container: Container, exc: Exception, record: dict[str, Any]) -> int:
    if isinstance(exc, StepAttemptFailed) and exc.retry_after_seconds is not None:
        seconds = exc.retry_after_seconds
    else:
        attempt = exc.attempt if isinstance(exc, StepAttemptFailed) else _receives(record)
        seconds = container.settings.step_retry_backoff_seconds * attempt
    return min(math.ceil(seconds), MAX_BACKOFF_SECONDS)


def _receives(record: dict[str, Any]) -> int:
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(raw) if str(raw).isdigit() else 1


def handle_batch(event: dict[str, Any], context: Any, container: Container) -> dict[str, Any]:
    started: dict[str, Future[None]] = {}
    for record in event.get("Records", []):
        try:
            message = JobMessage.parse(record["body"])
        except ValueError:
            logger.error("dropping a message that is not ours", extra={"id": record["messageId"]})
            continue
        started[record["messageId"]] = background.submit(work(container, message, record))

    def record_handler(record: SQSRecord) -> None:
        future = started.get(record.message_id)
        if future is not None:
            future.result()

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, container)

    return handler
