"""Domain errors. `guildstack.http` maps each to an HTTP status once."""

from __future__ import annotations

from typing import Any


class GuildstackError(Exception):
    """Base of every error the domain raises on purpose."""

    title = "Error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class BadRequest(GuildstackError):
    """A request that cannot be read at all (missing header, malformed body)."""

    title = "Bad request"


class InvalidInput(GuildstackError):
    title = "Invalid input"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class Unauthorized(GuildstackError):
    title = "Unauthorized"


class Forbidden(GuildstackError):
    title = "Forbidden"


class NotFound(GuildstackError):
    title = "Not found"


class Conflict(GuildstackError):
    title = "Conflict"


class PayloadTooLarge(GuildstackError):
    title = "Payload too large"


class InvalidWorkflow(InvalidInput):
    title = "Invalid workflow"


class RateLimited(GuildstackError):
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class BudgetExceeded(GuildstackError):
    title = "Budget exceeded"


class ProviderUnavailable(GuildstackError):
    title = "Model provider unavailable"


class DependencyUnavailable(GuildstackError):
    title = "Dependency unavailable"
