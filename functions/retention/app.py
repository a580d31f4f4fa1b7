"""RetentionFunction (daily): deletes the conversations each workspace keeps no longer
(its `conversation_retention_days`), with their messages and events."""

from __future__ import annotations

from typing import Any

from guildstack.bootstrap import Container
from guildstack.observability import logger
from guildstack.runtime import Handler, background


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        deleted = background.run(container.retention.sweep())
        logger.info("retention", extra={"deleted": deleted})
        return {"deleted": deleted}

    return handler
