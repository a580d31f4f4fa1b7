"""What a stream may answer: its events, or 204 when it has ended with nothing left."""

from guildstack.http.openapi import event_stream

# A finished run's or completed conversation's stream with nothing left to send: 204, which
# tells an EventSource to stop reconnecting.
ENDED_OR_STREAM = {
    **event_stream("The events, as Server-Sent Events."),
    204: {"description": "The stream has ended and nothing is left to send."},
}
