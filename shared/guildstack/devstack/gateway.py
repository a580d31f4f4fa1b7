"""One ASGI app playing API Gateway (HTTP API): each request goes to the app of the
function whose route in template.yaml matches, exactly as routed in AWS."""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from guildstack.devstack.template import Route, Template

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
READY_PATH = "/_devstack/ready"


@dataclass(frozen=True)
class _Compiled:
    route: Route
    function: str
    pattern: re.Pattern[str]
    rank: tuple[int, ...]  # lower is more specific: literal 0, {param} 1, {greedy+} 2


def _compile(route: Route, function: str) -> _Compiled:
    parts, rank = [], []
    for segment in route.path.strip("/").split("/") if route.path != "/" else []:
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(".+")
            rank.append(2)
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append("[^/]+")
            rank.append(1)
        else:
            parts.append(re.escape(segment))
            rank.append(0)
    pattern = re.compile("^/" + "/".join(parts) + "/?$")
    return _Compiled(route, function, pattern, (*rank, 1 if route.method == "ANY" else 0))


class Gateway:
    """The ASGI dispatcher; `apps` maps a function's logical id to its ASGI app."""

    def __init__(self, routes: list[_Compiled], apps: dict[str, Any]) -> None:
        self._routes = sorted(routes, key=lambda r: r.rank)
        self._apps = apps

    def match(self, method: str, path: str) -> str | None:
        """The logical id of the function serving `method path`, or None."""
        candidates = [r for r in self._routes if r.pattern.match(path)]
        for compiled in candidates:
            if compiled.route.method in (method, "ANY"):
                return compiled.function
        # A CORS preflight goes to the function that owns the path, as API Gateway's CORS does.
        if method == "OPTIONS" and candidates:
            return candidates[0].function
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _complete_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == READY_PATH and method == "GET":
            await _json(send, 200, {"status": "ready", "functions": sorted(self._apps)}, {})
            return
        function = self.match(method, path)
        if function is None:
            await _not_found(scope, send, method, path)
            return
        await self._apps[function](scope, receive, send)


def build_gateway(
    template: Template,
    *,
    import_module: Callable[[str], Any] = importlib.import_module,
) -> Gateway:
    """Import each HTTP function's FastAPI app (`<package>.app:app`) and route to it."""
    apps: dict[str, Any] = {}
    routes: list[_Compiled] = []
    for spec in template.functions:
        if not spec.routes:
            continue
        apps[spec.logical_id] = import_module(spec.app_module).app
        routes += [_compile(route, spec.logical_id) for route in spec.routes]
    return Gateway(routes, apps)


def declared_routes(template: Template) -> dict[str, set[tuple[str, str]]]:
    """Routes per function as template.yaml declares them, in FastAPI path syntax."""
    return {
        spec.logical_id: {(r.method, _fastapi_path(r.path)) for r in spec.routes}
        for spec in template.functions
        if spec.routes
    }


_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "options"})


def served_routes(app: Any) -> set[tuple[str, str]]:
    """Routes a FastAPI app serves, read from its OpenAPI document (a public, stable view)."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in _HTTP_METHODS
    }


def _fastapi_path(path: str) -> str:
    """API Gateway's greedy `{proxy+}` is `{proxy}` in OpenAPI."""
    return re.sub(r"\{(\w+)\+\}", r"{\1}", path)


async def _complete_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _not_found(scope: Scope, send: Send, method: str, path: str) -> None:
    request_id = str(uuid.uuid4())
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SAFE_ID.match(value.decode("latin-1")):
            request_id = value.decode("latin-1")
    body = {
        "type": "https://guildstack.dev/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": f"No route for {method} {path}.",
        "request_id": request_id,
    }
    headers = {"content-type": "application/problem+json", "x-request-id": request_id}
    await _json(send, 404, body, headers)


async def _json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    if not any(k == b"content-type" for k, _ in raw):
        raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
