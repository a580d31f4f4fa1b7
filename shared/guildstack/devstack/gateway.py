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
DOCUMENT_PATH, DOCS_PATH = "/openapi.json", "/docs"


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

    def __init__(
        self,
        routes: list[_Compiled],
        apps: dict[str, Any],
        cors_origins: frozenset[str] = frozenset(),
        document: Callable[[], dict[str, Any]] | None = None,
        observer: Callable[[str, str, int], None] | None = None,
        pages: dict[str, Any] | None = None,
    ) -> None:
        self._routes = sorted(routes, key=lambda r: r.rank)
        self._apps = apps
        self._cors_origins = cors_origins
        self._build_document = document
        self._document: dict[str, Any] | None = None
        # Told (method, route as template.yaml declares it, status) of each routed answer.
        self._observer = observer
        # Apps the devstack serves besides the API, by path prefix (the console).
        self._pages = pages or {}

    async def _serve_document(self, send: Send, path: str, cors: dict[str, str]) -> bool:
        """The whole API's OpenAPI document and its page (built on first request)."""
        if self._build_document is None or path not in (DOCUMENT_PATH, DOCS_PATH):
            return False
        from guildstack.devstack.openapi import docs_page

        if self._document is None:
            self._document = self._build_document()
        if path == DOCUMENT_PATH:
            await _json(send, 200, self._document, cors)
            return True
        page = docs_page(self._document).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        headers += [(k.encode(), v.encode()) for k, v in cors.items()]
        headers.append((b"content-length", str(len(page)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": page})
        return True

    def _cors(self, scope: Scope) -> dict[str, str]:
        """CORS headers for the gateway's own answers (the functions add their own), as
        API Gateway's CORS configuration adds them: only for an allowed origin."""
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None or origin not in self._cors_origins:
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    def match(self, method: str, path: str) -> str | None:
        """The logical id of the function serving `method path`, or None. HEAD goes where
        GET does (the function answers it as GET, without the body)."""
        compiled = self.route_for(method, path)
        return compiled.function if compiled is not None else None

    def route_for(self, method: str, path: str) -> _Compiled | None:
        candidates = [r for r in self._routes if r.pattern.match(path)]
        wanted = "GET" if method == "HEAD" else method
        for compiled in candidates:
            if compiled.route.method in (wanted, "ANY"):
                return compiled
        # A CORS preflight goes to the function that owns the path, as API Gateway's CORS does.
        if method == "OPTIONS" and candidates:
            return candidates[0]
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
        cors = self._cors(scope)
        if headers_too_large(scope):
            detail = f"The request headers exceed {MAX_HEADER_BYTES} bytes."
            await _problem(scope, send, 431, "Request Header Fields Too Large", detail, cors)
            return
        if path == READY_PATH and method == "GET":
            await _json(send, 200, {"status": "ready", "functions": sorted(self._apps)}, {})
            return
        compiled = self.route_for(method, path)
        if compiled is not None:
            app = self._apps[compiled.function]
            if self._observer is None or method == "OPTIONS":
                await app(scope, receive, send)
                return
            observer, declared = self._observer, compiled.route

            async def observed(message: Any) -> None:
                if message["type"] == "http.response.start":
                    observer(declared.method, declared.path, int(message["status"]))
                await send(message)

            await app(scope, receive, observed)
            return
        if method == "GET" and await self._serve_document(send, path, cors):
            return
        for prefix, page in self._pages.items():
            if path == prefix:
                await _json(send, 308, None, {"location": f"{prefix}/"})
                return
            if path.startswith(f"{prefix}/"):
                await page({**scope, "root_path": prefix}, receive, send)
                return
        if method == "OPTIONS" and cors:
            # A preflight for a path no function owns: answered here, so the browser gets
            # to see the 404 or 405 that follows.
            preflight = {
                **cors,
                "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
                "access-control-allow-headers": "Authorization, Content-Type, X-Workspace-Id",
                "access-control-max-age": "600",
            }
            await _json(send, 204, None, preflight)
            return
        allowed = self.allowed(path)
        if allowed is not None:
            detail = f"{method} is not allowed on {path}; allowed: {allowed}."
            headers = {"allow": allowed, **cors}
            await _problem(scope, send, 405, "Method Not Allowed", detail, headers)
            return
        await _problem(scope, send, 404, "Not Found", f"No route for {method} {path}.", cors)


def build_gateway(
    template: Template,
    *,
    import_module: Callable[[str], Any] = importlib.import_module,
    cors_origins: frozenset[str] = frozenset(),
    observer: Callable[[str, str, int], None] | None = None,
    pages: dict[str, Any] | None = None,
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

    def document() -> dict[str, Any]:
        from guildstack.devstack.openapi import build_document

        return build_document(template, import_module=import_module)

    return Gateway(routes, apps, cors_origins, document, observer, pages)


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
    payload = json.dumps(body).encode() if body is not None else b""
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    if not any(k == b"content-type" for k, _ in raw):
        raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
