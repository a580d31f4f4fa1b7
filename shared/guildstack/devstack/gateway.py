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
from guildstack.domain.limits import MAX_HEADER_BYTES
from guildstack.http.edges import allow_header, headers_too_large

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
        """The logical id of the function serving `method path`, or None. HEAD goes where
        GET does (the function answers it as GET, without the body)."""
        candidates = [r for r in self._routes if r.pattern.match(path)]
        wanted = "GET" if method == "HEAD" else method
        for compiled in candidates:
            if compiled.route.method in (wanted, "ANY"):
                return compiled.function
        # A CORS preflight goes to the function that owns the path, as API Gateway's CORS does.
        if method == "OPTIONS" and candidates:
            return candidates[0].function
        return None

    def allowed(self, path: str) -> str | None:
        """The `Allow` value for a path some route declares (None when none does)."""
        methods = {r.route.method for r in self._routes if r.pattern.match(path)}
        if not methods:
            return None
        if "ANY" in methods:
            methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
        return allow_header(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _complete_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if headers_too_large(scope):
            detail = f"The request headers exceed {MAX_HEADER_BYTES} bytes."
            await _problem(scope, send, 431, "Request Header Fields Too Large", detail)
            return
        if path == READY_PATH and method == "GET":
            await _json(send, 200, {"status": "ready", "functions": sorted(self._apps)}, {})
            return
        function = self.match(method, path)
        if function is not None:
            await self._apps[function](scope, receive, send)
            return
        allowed = self.allowed(path)
        if allowed is not None:
            detail = f"{method} is not allowed on {path}; allowed: {allowed}."
            await _problem(scope, send, 405, "Method Not Allowed", detail, {"allow": allowed})
            return
        await _problem(scope, send, 404, "Not Found", f"No route for {method} {path}.")


def build_gateway(
    template: Template,
    *,
    import_module: Callable[[str], Any] = importlib.import_module,
    apps: dict[str, Any] | None = None,
) -> Gateway:
    """Import each HTTP function's FastAPI app (`<package>.app:app`) and route to it; a
    function in `apps` is served by that ASGI app instead (a proxy to its own process)."""
    given = apps or {}
    apps = {}
    routes: list[_Compiled] = []
    for spec in template.functions:
        if not spec.routes:
            continue
        if spec.logical_id in given:
            apps[spec.logical_id] = given[spec.logical_id]
        else:
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


async def _problem(
    scope: Scope,
    send: Send,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    """A problem+json answer of the gateway itself, with the request id."""
    request_id = str(uuid.uuid4())
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SAFE_ID.match(value.decode("latin-1")):
            request_id = value.decode("latin-1")
    body = {
        "type": f"https://guildstack.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    all_headers = {
        "content-type": "application/problem+json",
        "x-request-id": request_id,
        **(headers or {}),
    }
    await _json(send, status, body, all_headers)


async def _json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    if not any(k == b"content-type" for k, _ in raw):
        raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
