"""DeadLetterFunction: consumes StepsDLQ. A step SQS gave up on is marked `dead`, its run
`failed`, and both emit events; an operator can retry the step through the API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from guildstack.bootstrap import Container
from guildstack.observability import logger
from guildstack.ports.runs import StepMessage
from guildstack.runtime import Handler, background


def handle_batch(event: dict[str, Any], context: Any, container: Container) -> dict[str, Any]:
    dead_letters = container.dead_letters

    def record_handler(record: SQSRecord) -> None:
        try:
            message = StepMessage.from_body(record.body)
        except ValueError:
            logger.error(
                "dropping a dead letter that is not a step", extra={"id": record.message_id}
            )
            return
        deliveries = record.attributes.approximate_receive_count
        buried = background.run(dead_letters.bury(message, int(deliveries) if deliveries else None))
        logger.info(
            "dead letter",
            extra={"run_id": str(message.run_id), "step": message.step_key, "buried": buried},
        )

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, container)

    return handler
