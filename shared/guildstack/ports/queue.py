"""The one queue's messages: run steps and document ingestion share StepsQueue."""

from __future__ import annotations

import json
from uuid import UUID

from guildstack.ports.memory import DocumentMessage
from guildstack.ports.runs import StepMessage

QueueMessage = StepMessage | DocumentMessage


def parse_message(body: str) -> QueueMessage:
    """The message in a queue body; `ValueError` for anything else."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("kind") == "document":
            return DocumentMessage(UUID(str(data["workspace_id"])), UUID(str(data["document_id"])))
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a queue message: {exc}") from exc
    return StepMessage.from_body(body)
