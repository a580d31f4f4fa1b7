"""DeadLetterFunction: consumes StepsDLQ. A job SQS gave up on ends for good: a step is
`dead` (its run `failed`, with events; an operator can retry it through the API), a
document `failed` (never re-sent)."""

from __future__ import annotations

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


def handle_batch(event: dict[str, Any], context: Any, container: Container) -> dict[str, Any]:
    jobs = container.jobs

    def record_handler(record: SQSRecord) -> None:
        try:
            message = JobMessage.parse(record.body)
        except ValueError:
            logger.error("dropping a dead letter that is not ours", extra={"id": record.message_id})
            return
        buried = background.run(jobs.bury(message))
        logger.info(
            "dead letter",
            extra={"kind": message.kind.value, "job": str(message.job_id), "buried": buried},
        )

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
