"""The answer to `POST /runs/{id}/stream-ticket` and `POST /conversations/{id}/stream-ticket`,
and what a stream those tickets open may answer."""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from pydantic import BaseModel

from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.openapi import event_stream

if TYPE_CHECKING:
    from guildstack.services.stream_access import StreamAccess, Ticket

# A finished run's or completed conversation's stream with nothing left to send: 204, which
# tells an EventSource to stop reconnecting.
ENDED_OR_STREAM = {
    **event_stream("The events, as Server-Sent Events."),
    204: {"description": "The stream has ended and nothing is left to send."},
}

Access = Annotated["Scoped[StreamAccess]", Depends(in_workspace(lambda c: c.stream_access))]


class StreamTicket(BaseModel):
    """Opens `stream` (add `?ticket=`) for `expires_in` seconds, without headers."""

    ticket: str
    expires_in: int
    stream: str

    @classmethod
    def of(cls, ticket: "Ticket") -> "StreamTicket":
        return cls(ticket=ticket.ticket, expires_in=ticket.expires_in, stream=ticket.stream)
