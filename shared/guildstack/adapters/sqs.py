"""The step queue on SQS (boto3, imported and connected on first use)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from guildstack.domain.errors import DependencyUnavailable
from guildstack.domain.jobs import JobMessage

SQS_BATCH = 10  # SendMessageBatch's limit
MAX_DELAY_SECONDS = 900  # SQS's longest per-message delay


class SqsStepQueue:
    def __init__(
        self, queue_url: str, *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self._queue_url = queue_url
        self._endpoint_url = endpoint_url
        self._region = region
        self._client: Any = None
        self._lock = threading.Lock()

    def forget_connections(self) -> None:
        """Drop the boto3 client and its connections (made again on first use)."""
        self._client = None

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3})
                    self._client = boto3.session.Session().client(
                        "sqs",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region,
                        config=config,
                    )
        return self._client

    async def send(self, messages: Sequence[JobMessage], *, delay_seconds: int = 0) -> None:
        delay = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        for start in range(0, len(messages), SQS_BATCH):
            batch = messages[start : start + SQS_BATCH]
            await asyncio.to_thread(self._send_batch, batch, delay)

    def _send_batch(self, batch: Sequence[JobMessage], delay: int) -> None:
        entries = [
            {"Id": str(i), "MessageBody": m.body(), "DelaySeconds": delay}
            for i, m in enumerate(batch)
        ]
        response = self.client().send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        failed = response.get("Failed") or []
        if failed:
            retry = [e for e in entries if e["Id"] in {f["Id"] for f in failed}]
            response = self.client().send_message_batch(QueueUrl=self._queue_url, Entries=retry)
            if response.get("Failed"):
                raise DependencyUnavailable("The step queue refused messages.")

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again in `seconds` (retry backoff)."""
        await asyncio.to_thread(
            self.client().change_message_visibility,
            QueueUrl=self._queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, 43_200)),
        )

    def attributes(self) -> dict[str, str]:
        response = self.client().get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        attributes: dict[str, str] = response.get("Attributes") or {}
        return attributes

    async def depth(self) -> int:
        """Messages waiting (SQS's approximate count); the self-audit reads the DLQ's."""
        attributes = await asyncio.to_thread(self.attributes)
        return int(attributes.get("ApproximateNumberOfMessages", 0))


class SqsProbe:
    name = "queue"
    critical = False

    def __init__(self, queue: SqsStepQueue) -> None:
        self._queue = queue

    async def check(self) -> bool:
        try:
            await asyncio.to_thread(self._queue.attributes)
            return True
        except Exception:  # noqa: BLE001 - a probe reports, it never raises
            return False
