"""The answer to `POST /runs/{id}/stream-ticket` and `POST /conversations/{id}/stream-ticket`."""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from pydantic import BaseModel

from guildstack.http.auth import Scoped, in_workspace

if TYPE_CHECKING:
    from guildstack.services.stream_access import StreamAccess, Ticket

Access = Annotated["Scoped[StreamAccess]", Depends(in_workspace(lambda c: c.stream_access))]


class StreamTicket(BaseModel):
    """Opens `stream` (add `?ticket=`) for `expires_in` seconds, without headers."""

    ticket: str
    expires_in: int
    stream: str

    @classmethod
    def of(cls, ticket: "Ticket") -> "StreamTicket":
        return cls(ticket=ticket.ticket, expires_in=ticket.expires_in, stream=ticket.stream)
