"""The devstack's SQS event sources and schedules against moto's real SQS server.

A small synthetic template and toy handlers; threads hand results back through queues.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import queue
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from guildstack.devstack.sqs import (
    EventSourcePoller,
    ScheduleRunner,
    SqsEndpoint,
    failed_message_ids,
    queue_env_name,
    start_event_sources,
    start_sqs,
)
from guildstack.devstack.template import Template

pytestmark = pytest.mark.integration

WAIT = 10.0  # seconds any single expected delivery may take (visibility timeouts are 1 s)


def _queue(visibility_timeout: int, dlq: str | None = None, max_receive: int = 0) -> Any:
    properties: dict[str, Any] = {"VisibilityTimeout": visibility_timeout}
    if dlq:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
            "maxReceiveCount": max_receive,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def _function(handler: str, events: dict[str, Any]) -> Any:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": handler, "Events": events},
    }


def _sqs(queue_id: str, batch_size: int = 10, *, partial: bool = False) -> Any:
    properties: dict[str, Any] = {
        "Queue": {"Fn::GetAtt": [queue_id, "Arn"]},
        "BatchSize": batch_size,
        "ScalingConfig": {"MaximumConcurrency": 2},
    }
    if partial:
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    return {"Type": "SQS", "Properties": properties}


DOCUMENT: dict[str, Any] = {
    "Globals": {"Function": {"Timeout": 30}},
    "Resources": {
        "BatchQueue": _queue(30),
        "PartialQueue": _queue(1),
        "CrashQueue": _queue(1),
        # Redrives to a queue declared after it; 180 s is overridden to 1 s by the fixture.
        "RetryQueue": _queue(180, dlq="RetryDLQ", max_receive=2),
        "RetryDLQ": _queue(30),
        "BatchFunction": _function("toy.batch.handler", {"Batch": _sqs("BatchQueue")}),
        "PartialFunction": _function(
            "toy.partial.handler", {"Steps": _sqs("PartialQueue", partial=True)}
        ),
        "CrashFunction": _function("toy.crash.handler", {"Steps": _sqs("CrashQueue")}),
        "RetryFunction": _function("toy.retry.handler", {"Steps": _sqs("RetryQueue", 1)}),
        "DeadLetterFunction": _function("toy.dead.handler", {"Dead": _sqs("RetryDLQ")}),
        "SweeperFunction": _function(
            "toy.sweeper.handler",
            {
                "Sweep": {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)"}},
                "Nightly": {"Type": "Schedule", "Properties": {"Schedule": "cron(0 3 * * ? *)"}},
            },
        ),
    },
}


@dataclass(frozen=True)
class Local:
    template: Template
    sqs: SqsEndpoint
    client: Any


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    template = Template.parse(DOCUMENT)
    with ExitStack() as stack:
        sqs = start_sqs(
            template,
            0,
            stack,
            prefix=f"t{uuid.uuid4().hex[:8]}-",
            visibility_timeout_override={"RetryQueue": 1},
        )
        yield Local(template=template, sqs=sqs, client=sqs.client())


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exit_stack:
        yield exit_stack


def _poller(local: Local, function_id: str, handler: Any, stack: ExitStack) -> EventSourcePoller:
    """A started single-thread poller, so batches arrive exactly as sent."""
    spec = local.template.function(function_id)
    event = spec.sqs_events[0]
    poller = EventSourcePoller(
        spec,
        event,
        local.sqs.queue_urls[event.queue],
        local.sqs.queue_arns[event.queue],
        handler,
        client=local.sqs.client(),
        region=local.sqs.region,
        concurrency=1,
    )
    poller.start()
    stack.callback(poller.stop)
    return poller


def _send(local: Local, queue_id: str, *bodies: str) -> list[str]:
    response = local.client.send_message_batch(
        QueueUrl=local.sqs.queue_urls[queue_id],
        Entries=[
            {
                "Id": str(n),
                "MessageBody": body,
                "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": "step"},
                    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                },
            }
            for n, body in enumerate(bodies)
        ],
    )
    assert not response.get("Failed")
    return [entry["MessageId"] for entry in response["Successful"]]


def _left_in_queue(local: Local, queue_id: str) -> int:
    """Visible plus in-flight messages."""
    attributes = local.client.get_queue_attributes(
        QueueUrl=local.sqs.queue_urls[queue_id],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_given_a_batch_when_polled_then_lambda_event_shape_and_all_deleted(
    local: Local, stack: ExitStack
) -> None:
    ids = _send(local, "BatchQueue", "one", "two", "three")
    events: queue.Queue[tuple[dict[str, Any], Any]] = queue.Queue()
    poller = _poller(local, "BatchFunction", lambda event, ctx: events.put((event, ctx)), stack)

    event, context = events.get(timeout=WAIT)
    poller.stop()

    assert list(event) == ["Records"]
    records = event["Records"]
    assert [r["messageId"] for r in records] == ids
    assert [r["body"] for r in records] == ["one", "two", "three"]
    record = records[0]
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == local.sqs.queue_arns["BatchQueue"]
    assert record["eventSourceARN"].startswith("arn:aws:sqs:us-east-1:")
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(b"one", usedforsecurity=False).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "step",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert context.function_name == "BatchFunction"
    assert context.get_remaining_time_in_millis() == 30_000
    assert events.empty()
    assert _left_in_queue(local, "BatchQueue") == 0


def test_given_batch_item_failures_when_reported_then_only_failed_come_back(
    local: Local, stack: ExitStack
) -> None:
    ids = _send(local, "PartialQueue", "ok-1", "fails-once", "ok-2")
    batches: queue.Queue[list[dict[str, Any]]] = queue.Queue()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = event["Records"]
        batches.put(records)
        failed = [r for r in records if r["body"] == "fails-once"]
        if failed and failed[0]["attributes"]["ApproximateReceiveCount"] == "1":
            return {"batchItemFailures": [{"itemIdentifier": failed[0]["messageId"]}]}
        return {"batchItemFailures": []}

    poller = _poller(local, "PartialFunction", handler, stack)
    first = batches.get(timeout=WAIT)
    second = batches.get(timeout=WAIT)
    poller.stop()

    assert [r["messageId"] for r in first] == ids
    assert [(r["messageId"], r["attributes"]["ApproximateReceiveCount"]) for r in second] == [
        (ids[1], "2")
    ]
    assert batches.empty()
    assert _left_in_queue(local, "PartialQueue") == 0


def test_given_a_message_that_always_fails_then_dead_letter_function_receives_it(
    local: Local, stack: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: queue.Queue[str] = queue.Queue()
    dead: queue.Queue[dict[str, Any]] = queue.Queue()

    def always_fails(event: dict[str, Any], context: Any) -> None:
        for record in event["Records"]:
            attempts.put(record["attributes"]["ApproximateReceiveCount"])
        raise RuntimeError("step failed")

    def dead_letter(event: dict[str, Any], context: Any) -> None:
        for record in event["Records"]:
            dead.put(record)

    modules = {
        "toy.retry": SimpleNamespace(handler=always_fails),
        "toy.dead": SimpleNamespace(handler=dead_letter),
    }
    template = Template(
        functions=[
            local.template.function("RetryFunction"),
            local.template.function("DeadLetterFunction"),
        ],
        queues=local.template.queues,
    )
    sources = start_event_sources(template, local.sqs, stack, import_module=modules.__getitem__)
    assert [type(s) for s in sources] == [EventSourcePoller, EventSourcePoller, ScheduleRunner]
    [message_id] = _send(local, "RetryQueue", "doomed")

    record = dead.get(timeout=3 * WAIT)

    assert record["messageId"] == message_id
    assert record["body"] == "doomed"
    assert record["eventSourceARN"] == local.sqs.queue_arns["RetryDLQ"]
    assert [attempts.get_nowait(), attempts.get_nowait()] == ["1", "2"]
    assert attempts.empty()
    assert "RetryFunction<-RetryQueue raised on a batch of 1" in caplog.text


def test_given_a_handler_that_raises_then_whole_batch_is_redelivered(
    local: Local, stack: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _send(local, "CrashQueue", "a", "b", "c")
    batches: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    calls = itertools.count(1)

    def handler(event: dict[str, Any], context: Any) -> None:
        batches.put(event["Records"])
        if next(calls) == 1:
            raise RuntimeError("boom")

    poller = _poller(local, "CrashFunction", handler, stack)
    first = batches.get(timeout=WAIT)
    redelivered: dict[str, str] = {}
    while len(redelivered) < len(ids):  # the batch may come back split in two receives
        for record in batches.get(timeout=WAIT):
            redelivered[record["messageId"]] = record["attributes"]["ApproximateReceiveCount"]
    poller.stop()

    assert [r["messageId"] for r in first] == ids
    assert redelivered == dict.fromkeys(ids, "2")
    assert _left_in_queue(local, "CrashQueue") == 0
    assert "RuntimeError: boom" in caplog.text


def test_given_a_schedule_when_triggered_then_handler_gets_eventbridge_event(
    local: Local, stack: ExitStack
) -> None:
    calls: queue.Queue[tuple[dict[str, Any], Any]] = queue.Queue()

    def handler(event: dict[str, Any], context: Any) -> str:
        calls.put((event, context))
        return "swept"

    sweeper = local.template.function("SweeperFunction")
    assert ScheduleRunner([sweeper], {"SweeperFunction": handler}).intervals() == {
        ("SweeperFunction", "Sweep"): 300.0
    }
    runner = ScheduleRunner(
        [sweeper, local.template.function("BatchFunction")],
        {"SweeperFunction": handler},
        interval_override_seconds=0.1,
    )

    assert runner.trigger("SweeperFunction") == "swept"
    event, context = calls.get_nowait()
    assert {k: event[k] for k in ("version", "detail-type", "source", "detail")} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "detail": {},
    }
    assert uuid.UUID(event["id"])
    assert event["time"].endswith("Z")
    assert event["region"] == "us-east-1"
    [resource] = event["resources"]
    assert resource.startswith("arn:aws:events:us-east-1:") and resource.endswith("Sweep")
    assert context.function_name == "SweeperFunction"
    runner.trigger("SweeperFunction", "Nightly")
    assert calls.get_nowait()[0]["resources"][0].endswith("SweeperFunctionNightly")
    with pytest.raises(KeyError, match="BatchFunction"):
        runner.trigger("BatchFunction")

    # The rate schedule fires on its (sped-up) timer; the cron one only on trigger.
    assert runner.intervals() == {("SweeperFunction", "Sweep"): 0.1}
    runner.start()
    stack.callback(runner.stop)
    timed = [calls.get(timeout=WAIT)[0], calls.get(timeout=WAIT)[0]]
    runner.stop()
    assert all(e["resources"][0].endswith("SweeperFunctionSweep") for e in timed)
    assert timed[0]["id"] != timed[1]["id"]


def test_given_the_stack_queues_then_environment_names_and_attributes(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert queue_env_name("StepsQueue") == "STEPS_QUEUE_URL"
    assert queue_env_name("StepsDLQ") == "STEPS_DLQ_URL"
    assert queue_env_name("DLQForSteps") == "DLQ_FOR_STEPS_URL"

    environment = local.sqs.environment()
    assert environment["SQS_ENDPOINT_URL"] == local.sqs.endpoint_url
    assert environment["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environment["AWS_ACCESS_KEY_ID"] == environment["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert environment["RETRY_QUEUE_URL"] == local.sqs.queue_urls["RetryQueue"]
    assert environment["RETRY_DLQ_URL"] == local.sqs.queue_urls["RetryDLQ"]
    assert environment["RETRY_DLQ_URL"].endswith("-RetryDLQ")

    retry = local.client.get_queue_attributes(
        QueueUrl=local.sqs.queue_urls["RetryQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert retry["VisibilityTimeout"] == "1"  # overridden from 180
    assert json.loads(retry["RedrivePolicy"]) == {
        "deadLetterTargetArn": local.sqs.queue_arns["RetryDLQ"],
        "maxReceiveCount": 2,
    }

    # A function's plain boto3 client finds the local queues from the environment alone.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    plain = boto3.session.Session().client("sqs")
    plain.send_message(QueueUrl=environment["BATCH_QUEUE_URL"], MessageBody="from env")
    received = local.client.receive_message(QueueUrl=local.sqs.queue_urls["BatchQueue"])
    [message] = received["Messages"]
    assert message["Body"] == "from env"
    local.client.delete_message(
        QueueUrl=local.sqs.queue_urls["BatchQueue"], ReceiptHandle=message["ReceiptHandle"]
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"id": "b"}]}, None),
        ({"batchItemFailures": "b"}, None),
        ("not a response", None),
    ],
)
def test_given_a_partial_response_then_failed_ids_as_lambda(
    result: Any, expected: set[str] | None
) -> None:
    assert failed_message_ids(result, {"a", "b"}) == expected


def test_given_a_broken_poller_client_then_thread_survives(
    local: Local, caplog: pytest.LogCaptureFixture
) -> None:
    errors: queue.Queue[str] = queue.Queue()

    class BrokenClient:
        def receive_message(self, **kwargs: Any) -> Any:
            errors.put(kwargs["QueueUrl"])
            raise ConnectionError("emulator gone")

    spec = local.template.function("BatchFunction")
    poller = EventSourcePoller(
        spec,
        spec.sqs_events[0],
        "http://nowhere/q",
        "arn:q",
        lambda event, context: None,
        client=BrokenClient(),
        concurrency=1,
    )
    with caplog.at_level(logging.ERROR):
        poller.start()
        assert errors.get(timeout=WAIT) == "http://nowhere/q"
        assert errors.get(timeout=WAIT) == "http://nowhere/q"  # retried after the error
        poller.stop()
    assert "emulator gone" in caplog.text
