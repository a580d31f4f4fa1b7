"""Domain errors. `guildstack.http` maps each to an HTTP status once.

A generic error's title is its status's name (RFC 9110's, as `http/problems.py: TITLES`
has them); an error that names a particular problem has a title of its own, in the same
Title Case."""

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

    title = "Bad Request"


class InvalidInput(GuildstackError):
    title = "Unprocessable Content"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class Unauthorized(GuildstackError):
    title = "Unauthorized"


class Forbidden(GuildstackError):
    title = "Forbidden"


class NotFound(GuildstackError):
    title = "Not Found"


class Conflict(GuildstackError):
    title = "Conflict"


class PayloadTooLarge(GuildstackError):
    title = "Content Too Large"


class InvalidWorkflow(InvalidInput):
    title = "Invalid Workflow"


class RateLimited(GuildstackError):
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class BudgetExceeded(GuildstackError):
    title = "Budget Exceeded"


class ProviderUnavailable(GuildstackError):
    """No provider in the chain could answer (after retries and failover)."""

    title = "Model Provider Unavailable"


class CircuitOpen(ProviderUnavailable):
    """No provider was even tried: every one in the chain is skipped while its breaker
    cools down. Nothing about the request failed; try again after `retry_after_seconds`."""

    def __init__(self, detail: str, retry_after_seconds: float) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1.0, retry_after_seconds)


class InvalidRequest(InvalidInput):
    """A model provider rejected the request itself; retrying or failing over cannot help."""

    title = "Invalid Model Request"


class InvalidModelOutput(GuildstackError):
    """A model kept answering with output that does not fit the JSON schema it was given,
    even after being told what was wrong. The request was fine and so was the provider's
    service (it answered), so it is neither `InvalidRequest` nor `ProviderUnavailable`."""

    title = "Invalid Model Output"

    def __init__(self, detail: str, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []


class ProviderFailed(GuildstackError):
    """One provider failed one attempt. Adapters raise it; the failover chain consumes it."""

    title = "Model Provider Failed"

    def __init__(
        self,
        detail: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.retry_after_seconds = retry_after_seconds


class DependencyUnavailable(GuildstackError):
    title = "Service Unavailable"


class Overloaded(DependencyUnavailable):
    """A dependency is up but busy (e.g. every database connection is in use): try again
    shortly."""

    title = "Service Busy"

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)
