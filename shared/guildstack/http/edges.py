"""Protocol edges every function (and the devstack gateway) answers alike: oversize
headers (431), HEAD served as GET without a body, and the methods a path allows."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Receive, Scope, Send

from guildstack.domain.limits import MAX_HEADER_BYTES


def header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope.get("headers", ()))


def headers_too_large(scope: Scope) -> bool:
    return header_bytes(scope) > MAX_HEADER_BYTES


def allow_header(methods: Iterable[str]) -> str:
    """The `Allow` value for `methods`: HEAD wherever GET is served."""
    allowed = {m.strip().upper() for m in methods if m.strip()}
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def as_get(scope: Scope, receive: Receive, send: Send) -> tuple[Scope, Receive, Send]:
    """A HEAD request as the GET it mirrors: the same status and headers, no body.

    Once the response has started the app is told the client went away, so a streamed
    response (SSE) stops instead of producing a body nobody will read."""
    started = False

    async def send_head(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Body messages are dropped: the empty final body above ended the response.

    async def receive_head() -> Message:
        if started:
            return {"type": "http.disconnect"}
        return await receive()

    return {**scope, "method": "GET"}, receive_head, send_head
