"""Authentication and workspace dependencies every function reuses.

`Depends(current_user)` proves who is calling (and counts the request against their rate
limit); `Depends(workspace_member(Role.X))` proves they belong to the `X-Workspace-Id`
workspace with at least role X: missing header 400, not a member 404, role too low 403.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import Depends, Request

from guildstack.domain.errors import BadRequest, RateLimited, Unauthorized
from guildstack.domain.principal import Principal
from guildstack.domain.vocabulary import Role
from guildstack.observability import logger

if TYPE_CHECKING:
    from guildstack.bootstrap import Container
    from guildstack.ports.ratelimit import RateLimiter


def container_of(request: Request) -> "Container":
    """The composition root the app was created with."""
    container: Container = request.app.state.container
    return container


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer access token is required.")
    return token.strip()


async def enforce_rate_limit(limiter: "RateLimiter | None", key: str) -> None:
    """Count the request against `key`; 429 with Retry-After when over the limit.

    When Redis cannot be reached the request is let through (and logged): an outage of
    the limiter must not become an outage of the API.
    """
    if limiter is None:
        return
    try:
        decision = await limiter.hit(key)
    except Exception:  # noqa: BLE001 - fail open, see docstring
        logger.warning("rate limiter unavailable; request allowed", extra={"key_kind": key[:5]})
        return
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {decision.limit} requests per minute exceeded.",
            retry_after_seconds=decision.retry_after_seconds,
        )


async def current_user(request: Request) -> Principal:
    """The verified caller; 401 for a missing or invalid token, 429 over the rate limit."""
    container = container_of(request)
    principal = await container.token_verifier.verify(bearer_token(request))
    await enforce_rate_limit(container.user_rate_limiter, f"user:{principal.user_id}")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


@dataclass(frozen=True)
class WorkspaceContext:
    """A member of the request's workspace, and the services that act for them."""

    principal: Principal
    workspace_id: UUID
    role: Role
    services: "Container"


def workspace_id_header(request: Request) -> UUID:
    raw = request.headers.get("x-workspace-id")
    if not raw:
        raise BadRequest("The X-Workspace-Id header is required.")
    try:
        return UUID(raw)
    except ValueError as exc:
        raise BadRequest("The X-Workspace-Id header is not a workspace id.") from exc


def workspace_member(minimum: Role) -> Callable[[Request], Awaitable[WorkspaceContext]]:
    """A dependency admitting members of the header's workspace with at least `minimum`.

    One flat dependency on the request, not a chain of sub-dependencies: FastAPI analyses
    every dependency again for every route at import, which is cold-start time.
    """

    async def dependency(request: Request) -> WorkspaceContext:
        principal = await current_user(request)
        workspace_id = workspace_id_header(request)
        services = container_of(request)
        role = await services.workspaces.require_role(principal, workspace_id, minimum)
        return WorkspaceContext(principal, workspace_id, role, services)

    return dependency
