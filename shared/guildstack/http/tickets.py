"""Streams a browser's `EventSource` can open: a `?ticket=` instead of headers.

`Depends(streamed(pick, kind, param))` is `in_workspace(pick)` for requests with a bearer
token and `X-Workspace-Id`; a request with `?ticket=` (and no `Authorization`) acts as the
user who asked for the ticket, in the workspace it names, for the stream in the path only.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from fastapi import Request
from pydantic import BaseModel

from guildstack.domain.errors import BadRequest, Unauthorized
from guildstack.http.auth import (
    AUTH_MARK,
    Scoped,
    address_of,
    container_of,
    enforce_limits,
    enforce_rate_limit,
    in_workspace,
)
from guildstack.http.ids import canonical_uuid
from guildstack.http.openapi import authenticates

if TYPE_CHECKING:
    from guildstack.services.stream_access import Ticket

S = TypeVar("S")


class StreamTicketResponse(BaseModel):
    """`POST /runs/{id}/stream-ticket` (and the conversation route): opens `stream` (add
    `?ticket=`) until `expires_at`, without headers."""

    ticket: str
    expires_at: datetime
    stream: str

    @classmethod
    def of(cls, ticket: "Ticket") -> "StreamTicketResponse":
        return cls(ticket=ticket.ticket, expires_at=ticket.expires_at, stream=ticket.stream)


def streamed(
    pick: Callable[..., S], kind: str, param: str
) -> Callable[[Request], Awaitable[Scoped[S]]]:
    by_header = in_workspace(pick)

    @authenticates
    async def dependency(request: Request) -> Scoped[S]:
        ticket = request.query_params.get("ticket")
        if ticket is None:
            return await by_header(request)
        if "authorization" in request.headers:
            raise BadRequest("Send a stream ticket or a bearer token, not both.")
        container = container_of(request)
        subject_id = canonical_uuid(request.path_params.get(param, ""))
        try:
            if subject_id is None:
                raise Unauthorized("The stream ticket is for another stream.")
            grant = await container.stream_access.redeem(ticket, kind, subject_id)
        except Unauthorized:
            limiter = container.invalid_token_rate_limiter
            await enforce_rate_limit(limiter, f"ip:{address_of(request)}")
            raise
        principal = grant.principal()
        await enforce_limits(request, principal, grant.workspace_id)
        return Scoped(principal, grant.workspace_id, pick(container))

    setattr(dependency, AUTH_MARK, "stream")
    return dependency
