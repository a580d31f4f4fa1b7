"""SQS and schedules on one machine: moto's SQS server plus Lambda's event sources.

`start_sqs` serves moto's SQS API and creates every queue of template.yaml with its
visibility timeout and redrive policy. `EventSourcePoller` plays Lambda's SQS event source
mapping (receive a batch, call the handler with Lambda's event, delete what succeeded);
`ScheduleRunner` plays EventBridge schedules. Handlers run in-process, in threads: unlike
Lambda, concurrent invocations of one function share the module's globals.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from guildstack.devstack.invoke import LambdaContext
from guildstack.devstack.template import (
    FunctionSpec,
    QueueSpec,
    ScheduleSpec,
    SqsEvent,
    Template,
    schedule_interval_seconds,
)

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIAL = "testing"  # moto accepts any key; never real credentials
LOCAL_ACCOUNT = "000000000000"  # the account LambdaContext's ARNs name
_RECEIVE_LIMIT = 10  # ReceiveMessage and DeleteMessageBatch take at most 10


def queue_env_name(logical_id: str) -> str:
    """`StepsQueue` → `STEPS_QUEUE_URL`, `StepsDLQ` → `STEPS_DLQ_URL`."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", logical_id)
    return f"{snake.upper()}_URL"


def sqs_client(endpoint_url: str, region: str = DEFAULT_REGION, *, pool_size: int = 10) -> Any:
    """A boto3 SQS client for the local server, with dummy credentials (thread-safe)."""
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=pool_size,
        connect_timeout=2,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=config,
    )


def queue_arn(client: Any, queue_url: str) -> str:
    """The ARN the server gives a queue (moto: arn:aws:sqs:<region>:123456789012:<name>)."""
    attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def serve_sqs(port: int, stack: ExitStack, *, host: str = "127.0.0.1") -> str:
    """Start moto's server on host:port (0 picks a free port), stopped by `stack`; its URL.

    moto keeps its state per process: every server started in one process serves the
    same queues.
    """
    from moto.server import ThreadedMotoServer

    _check_can_listen(host, port)  # ThreadedMotoServer.start() hangs if the bind fails
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)  # not one access-log line per long poll
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    stack.callback(server.stop)
    bound_host, bound_port = server.get_host_and_port()
    return f"http://{bound_host}:{bound_port}"


def _check_can_listen(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"the SQS emulator cannot listen on {host}:{port}: {exc}") from exc


@dataclass(frozen=True)
class SqsEndpoint:
    """The local SQS server and the queues of template.yaml on it, by logical id."""

    endpoint_url: str
    region: str
    queue_urls: dict[str, str]
    queue_arns: dict[str, str]

    def environment(self) -> dict[str, str]:
        """What a function needs to reach the local queues (`<SNAKE_ID>_URL` per queue)."""
        environment = {
            "SQS_ENDPOINT_URL": self.endpoint_url,
            # boto3 >= 1.28 reads this itself: plain boto3.client("sqs") also finds moto.
            "AWS_ENDPOINT_URL_SQS": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
        }
        for logical_id, url in self.queue_urls.items():
            environment[queue_env_name(logical_id)] = url
        return environment

    def client(self, *, pool_size: int = 10) -> Any:
        """A new boto3 SQS client for this server."""
        return sqs_client(self.endpoint_url, self.region, pool_size=pool_size)


def start_sqs(
    template: Template,
    port: int,
    stack: ExitStack,
    *,
    visibility_timeout_override: dict[str, int] | None = None,
    prefix: str = "",
    region: str = DEFAULT_REGION,
    host: str = "127.0.0.1",
) -> SqsEndpoint:
    """Serve SQS on `port` and create every queue of `template`, dead-letter queues first.

    A queue is named `prefix + logical id`. `visibility_timeout_override` maps logical ids
    to a visibility timeout in seconds replacing the template's (faster local retries).
    """
    overrides = dict(visibility_timeout_override or {})
    unknown = set(overrides) - {queue.logical_id for queue in template.queues}
    if unknown:
        raise ValueError(f"visibility_timeout_override names unknown queues: {sorted(unknown)}")
    endpoint_url = serve_sqs(port, stack, host=host)
    client = sqs_client(endpoint_url, region)
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for queue in _dead_letter_queues_first(template.queues):
        attributes = {
            "VisibilityTimeout": str(overrides.get(queue.logical_id, queue.visibility_timeout))
        }
        if queue.dead_letter_queue is not None:
            if queue.max_receive_count is None:
                raise ValueError(f"{queue.logical_id}: RedrivePolicy without maxReceiveCount")
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arns[queue.dead_letter_queue],
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        url = str(
            client.create_queue(QueueName=f"{prefix}{queue.logical_id}", Attributes=attributes)[
                "QueueUrl"
            ]
        )
        urls[queue.logical_id] = url
        arns[queue.logical_id] = queue_arn(client, url)
    return SqsEndpoint(endpoint_url=endpoint_url, region=region, queue_urls=urls, queue_arns=arns)


def _dead_letter_queues_first(queues: Sequence[QueueSpec]) -> list[QueueSpec]:
    ordered: list[QueueSpec] = []
    placed: set[str] = set()
    remaining = list(queues)
    while remaining:
        ready = [q for q in remaining if q.dead_letter_queue in (None, *placed)]
        if not ready:
            names = {q.logical_id: q.dead_letter_queue for q in remaining}
            raise ValueError(f"dead-letter queues missing from the template or cyclic: {names}")
        ordered.extend(ready)
        placed.update(q.logical_id for q in ready)
        remaining = [q for q in remaining if q.logical_id not in placed]
    return ordered


def resolve_handler(
    spec: FunctionSpec, import_module: Callable[[str], Any] = importlib.import_module
) -> Handler:
    """The callable named by the function's `Handler` (`functions.worker.handler.handler`)."""
    module_name, attribute = spec.handler.rsplit(".", 1)
    handler: Handler = getattr(import_module(module_name), attribute)
    return handler


def _context(spec: FunctionSpec) -> LambdaContext:
    return LambdaContext(function_name=spec.logical_id, timeout_seconds=spec.timeout)


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    attribute["dataType"] = value["DataType"]
    return attribute


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def sqs_event(
    messages: Iterable[Mapping[str, Any]], *, queue_arn: str, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """Lambda's SQS event (`{"Records": [...]}`) for messages from ReceiveMessage."""
    return {"Records": [sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


def failed_message_ids(result: Any, message_ids: set[str]) -> set[str] | None:
    """Ids to keep for retry per a ReportBatchItemFailures response; None: the whole batch.

    As Lambda: no response, no or an empty `batchItemFailures` → all succeeded; a malformed
    response or an `itemIdentifier` that is empty or not in the batch → the whole batch failed.
    """
    if result is None:
        return set()
    if not isinstance(result, Mapping):
        return None
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        failed.add(identifier)
    return failed


def _join_all(threads: Sequence[threading.Thread], timeout: float) -> None:
    """Join `threads` within one shared `timeout`; warn about any still busy."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.warning("thread %s still busy after stop", thread.name)


_RECEIVE_LOCKS: dict[str, threading.Lock] = {}
_RECEIVE_LOCKS_GUARD = threading.Lock()


def _receive_lock(queue_url: str) -> threading.Lock:
    with _RECEIVE_LOCKS_GUARD:
        return _RECEIVE_LOCKS.setdefault(queue_url, threading.Lock())


class EventSourcePoller:
    """Lambda's SQS event source mapping for one function and one queue.

    `concurrency` threads (the event's MaximumConcurrency, else 2) each long-poll a batch,
    call the handler with Lambda's SQS event and delete what succeeded. A handler that
    raises deletes nothing: the batch comes back after the visibility timeout, and after
    maxReceiveCount receives SQS moves it to the dead-letter queue.
    """

    def __init__(
        self,
        function: FunctionSpec,
        event: SqsEvent,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        client: Any,
        region: str = DEFAULT_REGION,
        wait_seconds: int = 1,
        concurrency: int | None = None,
    ) -> None:
        self.function = function
        self.event = event
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.concurrency = concurrency or event.maximum_concurrency or 2
        self._handler = handler
        self._client = client
        self._wait_seconds = wait_seconds
        self._batch_size = max(1, min(event.batch_size, _RECEIVE_LIMIT))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def name(self) -> str:
        return f"{self.function.logical_id}<-{self.event.queue}"

    def start(self) -> None:
        """Start the polling threads."""
        if self._threads:
            raise RuntimeError(f"{self.name} already started")
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{self.name}-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def signal_stop(self) -> None:
        """Ask the threads to stop after their current receive or batch; returns at once."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; waits for receives in flight and handlers running, up to `timeout`."""
        self._stop.set()
        _join_all(self._threads, timeout)
        self._threads = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():
                    break
                logger.exception("%s: polling %s failed; retrying", self.name, self.queue_url)
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch (long-polling), deliver it; the number of messages received."""
        # moto does not make a receive atomic: two concurrent receives can both be handed
        # the same visible message, which real SQS never does within its visibility
        # timeout. One receive per queue at a time keeps the emulator honest.
        with _receive_lock(self.queue_url):
            if self._stop.is_set():  # stopping: do not start another long poll
                return 0
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=self._wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages: list[dict[str, Any]] = response.get("Messages") or []
        if messages:
            self._deliver(messages)
        return len(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
        started = time.monotonic()
        try:
            result = self._handler(event, _context(self.function))
        except Exception:
            logger.exception(
                "%s raised on a batch of %d; it returns after the visibility timeout",
                self.name,
                len(messages),
            )
            return
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.function.timeout:
                logger.warning(
                    "%s ran %.1fs, over its %ds timeout (Lambda would have stopped it)",
                    self.name,
                    elapsed,
                    self.function.timeout,
                )
        failed: set[str] | None = set()
        if self.event.report_batch_item_failures:
            failed = failed_message_ids(result, {m["MessageId"] for m in messages})
        if failed is None:
            logger.error(
                "%s returned an invalid batchItemFailures response %r; the whole batch fails",
                self.name,
                result,
            )
            return
        if failed:
            logger.info("%s: %d of %d messages failed", self.name, len(failed), len(messages))
        self._delete([m for m in messages if m["MessageId"] not in failed])

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _RECEIVE_LIMIT):
            chunk = messages[start : start + _RECEIVE_LIMIT]
            response = self._client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed") or []:
                logger.warning("%s: could not delete a message: %s", self.name, failure)


def scheduled_event(
    rule_arn: str, *, region: str = DEFAULT_REGION, account: str = LOCAL_ACCOUNT
) -> dict[str, Any]:
    """EventBridge's event for a scheduled rule firing now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRunner:
    """EventBridge schedules: `rate(...)` schedules fire on timers, cron ones on `trigger`.

    `interval_override_seconds` replaces every rate schedule's interval (to run it often
    while developing). Timers first fire one interval after `start()`.
    """

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        handlers: Mapping[str, Handler],
        *,
        interval_override_seconds: float | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.functions = {spec.logical_id: spec for spec in functions if spec.schedules}
        missing = set(self.functions) - set(handlers)
        if missing:
            raise KeyError(f"no handler for scheduled functions {sorted(missing)}")
        self.region = region
        self.interval_override_seconds = interval_override_seconds
        self._handlers = dict(handlers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def intervals(self) -> dict[tuple[str, str], float]:
        """(function, schedule name) → seconds between firings, for the timed schedules."""
        timed: dict[tuple[str, str], float] = {}
        for spec in self.functions.values():
            for schedule in spec.schedules:
                interval = schedule_interval_seconds(schedule.expression)
                if interval is None:
                    continue  # cron: on demand only
                timed[spec.logical_id, schedule.name] = float(
                    self.interval_override_seconds or interval
                )
        return timed

    def start(self) -> None:
        """Start one timer thread per rate schedule."""
        if self._threads:
            raise RuntimeError("schedules already started")
        self._stop.clear()
        for (logical_id, name), interval in self.intervals().items():
            thread = threading.Thread(
                target=self._run,
                args=(logical_id, name, interval),
                name=f"schedule-{logical_id}-{name}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def signal_stop(self) -> None:
        """Ask the timers to stop; returns at once."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the timers; waits for an invocation in progress up to `timeout`."""
        self._stop.set()
        _join_all(self._threads, timeout)
        self._threads = []

    def trigger(self, logical_id: str, schedule: str | None = None) -> Any:
        """Invoke the function now as its schedule would; returns the result, raises its error."""
        spec = self.functions.get(logical_id)
        if spec is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise KeyError(f"no scheduled function {logical_id!r} (scheduled: {known})")
        chosen = self._schedule(spec, schedule)
        event = (
            dict(chosen.input)
            if chosen.input is not None
            else scheduled_event(self.rule_arn(spec, chosen), region=self.region)
        )
        return self._handlers[logical_id](event, _context(spec))

    def rule_arn(self, spec: FunctionSpec, schedule: ScheduleSpec) -> str:
        """The ARN of the rule SAM would create (`<stack>-<Function><Event>`)."""
        rule = f"guildstack-local-{spec.logical_id}{schedule.name}"
        return f"arn:aws:events:{self.region}:{LOCAL_ACCOUNT}:rule/{rule}"

    @staticmethod
    def _schedule(spec: FunctionSpec, name: str | None) -> ScheduleSpec:
        for schedule in spec.schedules:
            if name is None or schedule.name == name:
                return schedule
        raise KeyError(f"{spec.logical_id} has no schedule {name!r}")

    def _run(self, logical_id: str, name: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.trigger(logical_id, name)
            except Exception:
                logger.exception("scheduled %s (%s) raised", logical_id, name)


def start_event_sources(
    template: Template,
    sqs: SqsEndpoint,
    stack: ExitStack,
    *,
    import_module: Callable[[str], Any] = importlib.import_module,
    schedule_interval_override: float | None = None,
) -> list[EventSourcePoller | ScheduleRunner]:
    """Start a poller per SQS event of every function and one ScheduleRunner (last).

    Handlers are imported now, so the environment they read at import must be set before.
    `stack` stops them all together (before the SQS server if that was started earlier).
    """
    handlers: dict[str, Handler] = {}

    def handler_for(spec: FunctionSpec) -> Handler:
        if spec.logical_id not in handlers:
            handlers[spec.logical_id] = resolve_handler(spec, import_module)
        return handlers[spec.logical_id]

    sources: list[EventSourcePoller | ScheduleRunner] = []
    for spec in template.functions:
        for event in spec.sqs_events:
            if event.queue not in sqs.queue_urls:
                raise KeyError(f"{spec.logical_id} polls {event.queue!r}, not a queue of the stack")
            concurrency = event.maximum_concurrency or 2
            sources.append(
                EventSourcePoller(
                    spec,
                    event,
                    sqs.queue_urls[event.queue],
                    sqs.queue_arns[event.queue],
                    handler_for(spec),
                    client=sqs.client(pool_size=concurrency + 2),
                    region=sqs.region,
                )
            )
    scheduled = [spec for spec in template.functions if spec.schedules]
    sources.append(
        ScheduleRunner(
            scheduled,
            {spec.logical_id: handler_for(spec) for spec in scheduled},
            interval_override_seconds=schedule_interval_override,
            region=sqs.region,
        )
    )
    started: list[EventSourcePoller | ScheduleRunner] = []
    stack.callback(_stop_all, started)
    for source in sources:
        source.start()
        started.append(source)
    return sources


def _stop_all(sources: Sequence[EventSourcePoller | ScheduleRunner]) -> None:
    """Signal every source first so their long polls end together, then join each."""
    for source in sources:
        source.signal_stop()
    for source in sources:
        source.stop()
