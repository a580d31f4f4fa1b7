"""Leased background jobs and the one queue message that names them.

Every kind of background work (a run's step, a document's ingestion) follows the same rules:
a worker takes a job with a lease and an attempt number; a job is takeable when it waits, or
when the lease of the worker holding it has run out; a failed attempt gives the job back for
the queue's redelivery; the dead-letter verdict ends it for good. `RunGraph` applies them to
steps, `DocumentJob` to documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from guildstack.domain.vocabulary import JobKind

__all__ = ["DocumentJob", "DocumentStatus", "JobKind", "JobMessage", "lease_expired"]


def lease_expired(lease_until: datetime | None, now: datetime) -> bool:
    """A held job whose lease ended: its worker is presumed dead and another may take it."""
    return lease_until is not None and lease_until <= now


@dataclass(frozen=True)
class JobMessage:
    """The body of every queue message: which job of which workspace to work on.

    `job_id` is the run (for a step, named by `step_key`) or the document.
    """

    kind: JobKind
    workspace_id: UUID
    job_id: UUID
    step_key: str | None = None

    @classmethod
    def step(cls, workspace_id: UUID, run_id: UUID, step_key: str) -> JobMessage:
        return cls(JobKind.STEP, workspace_id, run_id, step_key)

    @classmethod
    def document(cls, workspace_id: UUID, document_id: UUID) -> JobMessage:
        return cls(JobKind.DOCUMENT, workspace_id, document_id)

    def body(self) -> str:
        data: dict[str, str] = {
            "kind": self.kind.value,
            "workspace_id": str(self.workspace_id),
            "job_id": str(self.job_id),
        }
        if self.step_key is not None:
            data["step_key"] = self.step_key
        return json.dumps(data)

    @classmethod
    def parse(cls, body: str) -> JobMessage:
        """The message in a queue body; `ValueError` for anything else. Bodies written
        before messages named their kind (`run_id` + `step_key`, or `kind: document` +
        `document_id`) still parse, so messages in flight survive a deploy."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            kind = JobKind(data.get("kind", JobKind.STEP))
            legacy = "run_id" if kind is JobKind.STEP else "document_id"
            job = data.get("job_id") or data.get(legacy)
            message = cls(kind, UUID(str(data["workspace_id"])), UUID(str(job)))
            if kind is JobKind.STEP:
                key = data["step_key"]
                if not isinstance(key, str) or not key:
                    raise ValueError("empty step_key")
                message = cls(kind, message.workspace_id, message.job_id, key)
        except (TypeError, KeyError, json.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"not a queue message: {exc}") from exc
        return message


class DocumentStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker (its message is, or will be, on the queue)
    PROCESSING = "processing"  # a worker holds it under a lease
    READY = "ready"
    FAILED = "failed"


@dataclass
class DocumentJob:
    """A document's ingestion as a leased job."""

    id: UUID
    workspace_id: UUID
    status: DocumentStatus
    attempt: int = 0
    lease_until: datetime | None = None
    error: str | None = None

    def claimable(self, now: datetime) -> bool:
        if self.status is DocumentStatus.PENDING:
            return True
        return self.status is DocumentStatus.PROCESSING and lease_expired(self.lease_until, now)

    def claim(self, *, lease_seconds: int, now: datetime) -> bool:
        if not self.claimable(now):
            return False
        self.status = DocumentStatus.PROCESSING
        self.attempt += 1
        self.lease_until = now + timedelta(seconds=lease_seconds)
        return True

    def holds(self, attempt: int) -> bool:
        return self.status is DocumentStatus.PROCESSING and self.attempt == attempt

    def release(self, attempt: int, error: str) -> bool:
        """A failed attempt: back to pending for the queue's redelivery."""
        if not self.holds(attempt):
            return False
        self.status, self.lease_until, self.error = DocumentStatus.PENDING, None, error[:500]
        return True

    def finish(self, attempt: int) -> bool:
        if not self.holds(attempt):
            return False
        self.status, self.lease_until, self.error = DocumentStatus.READY, None, None
        return True

    def bury(self, now: datetime) -> bool:
        """The queue gave up on it: `failed` for good, unless a live lease still holds it."""
        if not self.claimable(now):
            return False
        tries = "attempt" if self.attempt == 1 else "attempts"
        self.status, self.lease_until = DocumentStatus.FAILED, None
        self.error = f"Ingestion failed repeatedly (gave up after {self.attempt} {tries})."
        return True
