"""WorkerFunction's batch handling with scripted jobs: a record's retry backoff is set the
moment that record fails, and a batch whose every record fails is a partial-failure
response, not a function error."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from functions.worker.app import handle_batch
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.jobs import JobMessage
from guildstack.services.engine import StepAttemptFailed

WORKSPACE, RUN = uuid.uuid4(), uuid.uuid4()


def record(key: str) -> dict[str, Any]:
    body = JobMessage.step(WORKSPACE, RUN, key).body()
    return {
        "messageId": f"m-{key}",
        "receiptHandle": f"r-{key}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:steps",
        "awsRegion": "us-east-1",
    }


@dataclass
class Timeline:
    """What happened, in order, across the records of one batch."""

    entries: list[str] = field(default_factory=list)
    delayed: asyncio.Event | None = None


@dataclass
class RecordingQueue:
    timeline: Timeline

    async def send(self, messages: Any, *, delay_seconds: int = 0) -> None:
        return None

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        self.timeline.entries.append(f"delay {receipt_handle} {seconds}")
        if self.timeline.delayed is not None:
            self.timeline.delayed.set()


@dataclass
class ScriptedJobs:
    """`slow` finishes only once some failed record's backoff was set (or after 5 s);
    `fail` fails at once."""

    timeline: Timeline

    async def work(self, message: JobMessage) -> None:
        key = message.step_key
        if key == "slow":
            self.timeline.delayed = asyncio.Event()
            try:
                await asyncio.wait_for(self.timeline.delayed.wait(), timeout=5)
            except TimeoutError:
                self.timeline.entries.append("slow gave up waiting")
            self.timeline.entries.append("slow done")
            return
        raise StepAttemptFailed(key or "", 1, "injected", retry_after=7)


def _container(timeline: Timeline) -> Any:
    return build(
        Settings(stage="test"),
        step_queue=RecordingQueue(timeline),
        jobs=ScriptedJobs(timeline),
    )


def test_given_a_failing_record_behind_a_slow_one_then_its_backoff_is_set_at_once() -> None:
    timeline = Timeline()
    event = {"Records": [record("slow"), record("fail")]}

    response = handle_batch(event, None, _container(timeline))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-fail"}]}
    assert timeline.entries == ["delay r-fail 7", "slow done"]


def test_given_every_record_failing_then_a_partial_response_and_no_function_error() -> None:
    timeline = Timeline()
    event = {"Records": [record("fail"), record("fail2")]}

    response = handle_batch(event, None, _container(timeline))

    failures = sorted(item["itemIdentifier"] for item in response["batchItemFailures"])
    assert failures == ["m-fail", "m-fail2"]
    assert sorted(timeline.entries) == ["delay r-fail 7", "delay r-fail2 7"]


def test_given_a_body_that_is_not_a_job_then_it_is_acknowledged() -> None:
    timeline = Timeline()
    junk = {**record("x"), "messageId": "m-junk", "body": json.dumps({"hello": 1})}

    response = handle_batch({"Records": [junk]}, None, _container(timeline))

    assert response == {"batchItemFailures": []}
