"""The client's network address, for limits per address. Never from a header a client can
write (X-Forwarded-For, Forwarded, X-Real-IP): a client rotating one would get a fresh
limit with every request.

- Lambda behind API Gateway (Mangum): the request context of the invocation event
  (`requestContext.http.sourceIp`), which API Gateway fills from the connection.
- Lambda behind the Web Adapter (the Stream function's URL): the adapter writes the
  invocation's request context into `x-amzn-request-context` itself, replacing any value
  a client sent, so that header is the event's, not the client's.
- Anywhere else (the devstack's uvicorn, tests): the socket peer.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

UNKNOWN = "unknown"


def client_address(request: Request, *, behind_web_adapter: bool = False) -> str:
    event: Any = request.scope.get("aws.event")
    if isinstance(event, dict):
        return _source_ip(event.get("requestContext")) or UNKNOWN
    if behind_web_adapter:
        raw = request.headers.get("x-amzn-request-context")
        try:
            context = json.loads(raw) if raw else None
        except ValueError:
            context = None
        return _source_ip(context) or UNKNOWN
    return request.client.host if request.client else UNKNOWN


def _source_ip(context: Any) -> str | None:
    """`http.sourceIp` (HTTP API, function URL: payload 2.0) or `identity.sourceIp` (REST)."""
    if not isinstance(context, dict):
        return None
    for section in ("http", "identity"):
        part = context.get(section)
        if isinstance(part, dict) and isinstance(part.get("sourceIp"), str) and part["sourceIp"]:
            return str(part["sourceIp"])
    return None
