"""SweeperFunction (every 5 minutes): re-sends steps left queued without a live message
(a crash between commit and send) and steps whose worker died holding the lease."""

from __future__ import annotations

from typing import Any

from guildstack.bootstrap import Container
from guildstack.observability import logger
from guildstack.runtime import Handler, background


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        resent = background.run(container.sweeper.sweep())
        logger.info("sweep", extra={"resent": resent})
        return {"resent": resent}

    return handler
