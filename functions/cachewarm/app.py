"""CacheWarmFunction (hourly): fills the caches of the workspaces active in the last day."""

from __future__ import annotations

from typing import Any

from guildstack.bootstrap import Container
from guildstack.runtime import Handler, background


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        return background.run(container.cache_warmer.warm())

    return handler
