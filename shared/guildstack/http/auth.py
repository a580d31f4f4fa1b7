"""Authentication and workspace dependencies every function reuses.

`Depends(current_user)` proves who is calling (and counts the request against their rate
limit). `Depends(in_workspace(pick))` adds the `X-Workspace-Id` workspace (missing or
malformed header: 400; a member's request also counts against the workspace's limit) and
the one service the route calls; that service checks the caller's membership and role
inside its own transaction (not a member: 404, role too low: 403), so the check and the
action it allows share one unit of work.

Limits count requests, not what a request does: a long-poll or an event stream counts once,
when it is accepted.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Generic, TypeVar
from uuid import UUID

from fastapi import Depends, Request

from guildstack.domain.errors import BadRequest, RateLimited, Unauthorized
from guildstack.domain.principal import Principal
from guildstack.http.client import client_address
from guildstack.http.ids import canonical_uuid
from guildstack.http.openapi import authenticates
from guildstack.observability import logger

if TYPE_CHECKING:
    from guildstack.bootstrap import Container
    from guildstack.ports.ratelimit import RateDecision, RateLimiter


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


async def enforce_rate_limit(limiter: "RateLimiter | None", key: str) -> "RateDecision | None":
    """Count the request against `key`; 429 with Retry-After when over the limit. The
    decision that let it through (None when nothing was counted).

    When Redis cannot be reached the request is let through (and logged): an outage of
    the limiter must not become an outage of the API.
    """
    if limiter is None:
        return None
    try:
        decision = await limiter.hit(key)
    except Exception:  # noqa: BLE001 - fail open, see docstring
        logger.warning("rate limiter unavailable; request allowed", extra={"key_kind": key[:5]})
        return None
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {decision.limit} requests per minute exceeded.",
            retry_after_seconds=decision.retry_after_seconds,
        )
    return decision


def address_of(request: Request) -> str:
    """The client's address for limits per address (never from a header a client writes)."""
    return client_address(
        request, behind_web_adapter=container_of(request).settings.behind_web_adapter
    )


@authenticates
async def current_user(request: Request) -> Principal:
    """The verified caller; 401 for a missing or invalid token, 429 over the rate limit.

    Invalid tokens are counted per client address: past that limit they get 429 instead
    of 401 (a valid token from the same address still works)."""
    principal = await _verified(request)
    await enforce_rate_limit(container_of(request).user_rate_limiter, _user_key(principal))
    return principal


async def _verified(request: Request) -> Principal:
    """The token's caller; an invalid token counts against its address's limit."""
    container = container_of(request)
    token = bearer_token(request)
    try:
        return await container.token_verifier.verify(token)
    except Unauthorized:
        limiter = container.invalid_token_rate_limiter
        await enforce_rate_limit(limiter, f"ip:{address_of(request)}")
        raise


def _user_key(principal: Principal) -> str:
    return f"user:{principal.user_id}"


async def enforce_limits(request: Request, principal: Principal, workspace_id: UUID) -> None:
    """Count the request against the caller's limit and, when the caller is a member,
    against the workspace's (a non-member's request is not counted there: its action
    answers 404). 429 with Retry-After naming the limit that refused; a refused request
    counts against neither. Fails open like `enforce_rate_limit`.

    When this container knows the caller's membership (the usual case) both limits are
    counted in one round trip. Otherwise the caller's own limit is counted first, so a
    caller over it cannot make the membership lookup run for workspace after workspace.
    """
    container = container_of(request)
    users, workspaces = container.user_rate_limiter, container.workspace_rate_limit
    user_key = _user_key(principal)
    if workspaces is None:
        await enforce_rate_limit(users, user_key)
        return
    member = workspaces.known(principal.user_id, workspace_id)
    workspace_key = workspaces.key(workspace_id)
    if member is None:
        user_hit = await enforce_rate_limit(users, user_key)
        try:
            member = await workspaces.is_member(principal.user_id, workspace_id)
        except Exception:  # noqa: BLE001 - fail open, see enforce_rate_limit
            logger.warning("workspace membership unavailable; request allowed")
            return
        if member:
            await _hit_workspace_after(workspaces.limiter, workspace_key, users, user_key, user_hit)
        return
    if not member:
        await enforce_rate_limit(users, user_key)
        return
    if users is None:
        await _hit_workspace_after(workspaces.limiter, workspace_key, None, user_key, None)
        return
    try:
        decisions = await users.hit_with(user_key, [(workspaces.limiter, workspace_key)])
    except Exception:  # noqa: BLE001 - fail open, see enforce_rate_limit
        logger.warning("rate limiter unavailable; request allowed")
        return
    for index, decision in enumerate(decisions):
        if not decision.allowed:
            raise _limited(decision, workspace=index == 1)


async def _hit_workspace_after(
    limiter: "RateLimiter",
    workspace_key: str,
    users: "RateLimiter | None",
    user_key: str,
    user_hit: "RateDecision | None",
) -> None:
    """The workspace's count on its own; refused: the user's hit (if any) is given back."""
    try:
        decision = await limiter.hit(workspace_key)
    except Exception:  # noqa: BLE001 - fail open, see enforce_rate_limit
        logger.warning("rate limiter unavailable; request allowed")
        return
    if decision.allowed:
        return
    if users is not None and user_hit is not None and user_hit.ticket:
        try:
            await users.release(user_key, user_hit.ticket)
        except Exception:  # noqa: BLE001 - the refusal stands either way
            logger.warning("could not release a user hit")
    raise _limited(decision, workspace=True)


def _limited(decision: "RateDecision", *, workspace: bool) -> RateLimited:
    whose = "The workspace's rate limit" if workspace else "Rate limit"
    return RateLimited(
        f"{whose} of {decision.limit} requests per minute exceeded.",
        retry_after_seconds=decision.retry_after_seconds,
    )


# Marks for the API document (`devstack/openapi.py`): which routes need what.
AUTH_MARK = "__guildstack_auth__"
setattr(current_user, AUTH_MARK, "user")

CurrentUser = Annotated[Principal, Depends(current_user)]


S = TypeVar("S")


@dataclass(frozen=True)
class Scoped(Generic[S]):
    """A signed-in caller acting in the request's workspace, and the service they call."""

    principal: Principal
    workspace_id: UUID
    service: S


def workspace_id_header(request: Request) -> UUID:
    raw = request.headers.get("x-workspace-id")
    if not raw:
        raise BadRequest("The X-Workspace-Id header is required.")
    workspace_id = canonical_uuid(raw)
    if workspace_id is None:
        raise BadRequest("The X-Workspace-Id header is not a workspace id in canonical form.")
    return workspace_id


def in_workspace(pick: Callable[["Container"], S]) -> Callable[[Request], Awaitable[Scoped[S]]]:
    """A dependency giving the verified caller, the header's workspace and `pick(container)`.

    One flat dependency on the request, not a chain of sub-dependencies: FastAPI analyses
    every dependency again for every route at import, which is cold-start time.
    """

    @authenticates
    async def dependency(request: Request) -> Scoped[S]:
        principal = await _verified(request)
        workspace_id = workspace_id_header(request)
        await enforce_limits(request, principal, workspace_id)
        return Scoped(principal, workspace_id, pick(container_of(request)))

    setattr(dependency, AUTH_MARK, "workspace")
    return dependency


def service(pick: Callable[["Container"], S]) -> Callable[[Request], S]:
    """A dependency giving one service of the app's composition root."""

    def dependency(request: Request) -> S:
        return pick(container_of(request))

    return dependency
