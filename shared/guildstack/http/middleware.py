"""Pure-ASGI middleware: request ids, correlation ids, the request-size limits (body and
headers), and HEAD served as GET."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guildstack.domain.limits import MAX_HEADER_BYTES
from guildstack.http.edges import allow_header, as_get, headers_too_large
from guildstack.http.problems import problem
from guildstack.observability import logger

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _incoming_request_id(scope: Scope) -> str:
    """API Gateway's request id, a sane client-supplied one, or a new one."""
    event: Any = scope.get("aws.event") or {}
    context_id = (event.get("requestContext") or {}).get("requestId")
    if isinstance(context_id, str) and context_id:
        return str(context_id)
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
    return str(uuid.uuid4())


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-Id) and refuses bodies over the limit.

    Bodies are read up to the limit before the app runs (they are at most ~1 MB, and
    Lambda buffers them anyway), so an oversize chunked upload is a clean 413 rather than
    an error surfacing from inside the framework's body parsing.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        logger.set_correlation_id(request_id)
        started = time.perf_counter()
        status: list[int] = []

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self._handle(scope, receive, send_noting_status, request_id)
        finally:
            _access_log(scope, status[0] if status else 500, started, request_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        if headers_too_large(scope):
            detail = f"The request headers exceed {MAX_HEADER_BYTES} bytes."
            await problem(431, detail, request_id=request_id)(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            scope, receive, send = as_get(scope, receive, send)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if message["status"] == 405:
                    headers = [_with_head(k, v) for k, v in headers]
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] in _BODY_METHODS:
            declared = _content_length(scope)
            body = None if (declared or 0) > self.max_body_bytes else await self._read(receive)
            if body is None:
                await self._too_large(scope, receive, send, request_id)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_id)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit."""
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(chunks)
            chunks += message.get("body", b"")
            if len(chunks) > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return bytes(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        response = problem(
            413,
            f"The request body exceeds {self.max_body_bytes} bytes.",
            request_id=request_id,
        )
        await response(scope, receive, send)


def _access_log(scope: Scope, status: int, started: float, request_id: str) -> None:
    """One line per request: method, route template (never the raw path, which carries
    ids), status, latency and request id."""
    route = scope.get("route")
    template = getattr(route, "path", None) or "-"
    logger.info(
        "request",
        extra={
            "method": scope["method"],
            "route": template,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "request_id": request_id,
        },
    )


def _with_head(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """The app's own `Allow` names GET only; HEAD is served wherever GET is."""
    if name.lower() != b"allow":
        return name, value
    return name, allow_header(value.decode("latin-1").split(",")).encode("latin-1")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def request_id(request: Request) -> str:
    """The current request's id."""
    return str(getattr(request.state, "request_id", ""))
