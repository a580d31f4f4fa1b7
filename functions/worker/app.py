"""WorkerFunction: executes step messages from StepsQueue (ARCHITECTURE.md §5), and the
document-ingestion messages that share the queue.

Every record of a batch starts at once on the process's loop; Powertools' `BatchProcessor`
then reports each failed record (`ReportBatchItemFailures`) so SQS redelivers only those,
after a backoff set on the message itself. A body that is not a step message is logged
and acknowledged: redelivering it could never help.
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
from guildstack.observability import logger
from guildstack.ports.queue import parse_message
from guildstack.ports.runs import StepMessage
from guildstack.runtime import Handler, background
from guildstack.services.runs import StepAttemptFailed


def handle_batch(event: dict[str, Any], context: Any, container: Container) -> dict[str, Any]:
    started: dict[str, Future[Any]] = {}
    for record in event.get("Records", []):
        try:
            message = parse_message(record["body"])
        except ValueError:
            logger.error("dropping a message that is not ours", extra={"id": record["messageId"]})
            continue
        if isinstance(message, StepMessage):
            started[record["messageId"]] = background.submit(container.step_engine.handle(message))
        else:
            started[record["messageId"]] = background.submit(container.memory.ingest(message))

    def record_handler(record: SQSRecord) -> None:
        future = started.get(record.message_id)
        if future is None:
            return
        try:
            future.result()
        except StepAttemptFailed as failed:
            backoff = failed.retry_after_seconds
            if backoff is None:
                backoff = container.settings.step_retry_backoff_seconds * failed.attempt
            if backoff > 0:
                _delay(container, record.receipt_handle, min(math.ceil(backoff), 900))
            raise

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def _delay(container: Container, receipt_handle: str, seconds: int) -> None:
    try:
        background.run(container.step_queue.delay(receipt_handle, seconds), timeout=10)
    except Exception:  # noqa: BLE001 - without the backoff the queue's timeout still applies
        logger.warning("could not set the retry backoff on a step message")


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, container)

    return handler
