"""One OpenAPI 3.1 document for the whole API, as the gateway routes it.

Each function's FastAPI app documents its own routes; this joins the routes template.yaml
gives each function into one document and adds what the apps do not say themselves: the
bearer scheme (and the stream ticket) on routes that need them, `X-Workspace-Id` where a
route acts in a workspace, problem+json for the errors every such route can answer, and
`text/event-stream` for streamed routes. `guildstack openapi` writes it to
`docs/openapi.json`; the devstack serves it at `/openapi.json` (and a page at `/docs`).
"""

from __future__ import annotations

import copy
import html
import importlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from guildstack import __version__
from guildstack.devstack.gateway import _fastapi_path
from guildstack.devstack.template import Template
from guildstack.http.auth import AUTH_MARK

PROBLEM_JSON = "application/problem+json"
_SCHEMA_REF = "#/components/schemas/"

PROBLEM = {
    "type": "object",
    "title": "Problem",
    "description": "An error (RFC 9457): `type`, `title`, `status`, `detail`, `request_id`.",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
    },
}
VALIDATION_PROBLEM = {
    "title": "ValidationProblem",
    "description": "A 422 problem with one entry per field at fault.",
    "allOf": [
        {"$ref": f"{_SCHEMA_REF}Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg", "type"],
                        "properties": {
                            "loc": {"type": "array", "items": {"type": "string"}},
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                }
            },
        },
    ],
}
# What each status means on any route that can answer it.
_MEANING = {
    400: "Unreadable request: invalid JSON, or a missing or malformed `X-Workspace-Id`.",
    401: "No valid access token (or stream ticket).",
    402: "The workspace's budget is spent.",
    403: "The caller's role does not allow this.",
    404: "No such resource in a workspace the caller belongs to.",
    409: "The resource's state does not allow this.",
    413: "The body is too large.",
    422: "Invalid input; `errors` names each field at fault.",
    429: "Rate limited; `Retry-After` says when to retry.",
    503: "A dependency is unavailable or busy; `Retry-After` when it is busy.",
}
_SSE_DESCRIPTION = (
    "Server-Sent Events: each event has `event:` (its type), `data:` (JSON) and, where a "
    "client may resume after it, `id:` (send it back as `Last-Event-ID`)."
)


def auth_of(route: APIRoute) -> str | None:
    """`user`, `workspace` or `stream` for routes behind the auth dependencies, else None."""
    for dependency in route.dependant.dependencies:
        mark = getattr(dependency.call, AUTH_MARK, None)
        if mark is not None:
            return str(mark)
    return None


def _routes(app: FastAPI) -> Iterator[APIRoute]:
    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    yield from walk(list(app.router.routes))


def _streams(route: APIRoute) -> bool:
    returned = route.endpoint.__annotations__.get("return")
    return "StreamingResponse" in str(returned)


def build_document(
    template: Template,
    *,
    import_module: Callable[[str], Any] = importlib.import_module,
) -> dict[str, Any]:
    """The whole API's document (raises if two functions define one schema differently)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": PROBLEM, "ValidationProblem": VALIDATION_PROBLEM}
    for spec in template.functions:
        if not spec.routes:
            continue
        app: FastAPI = import_module(spec.app_module).app
        document = copy.deepcopy(app.openapi())
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in ("HTTPValidationError", "ValidationError", "Problem"):
                continue  # FastAPI's validation errors are problems; ours is defined here
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"schema {name} differs between functions ({spec.logical_id})")
        kinds = {
            (method, route.path): (auth_of(route), _streams(route))
            for route in _routes(app)
            for method in route.methods or ()
        }
        for route in spec.routes:
            path = _fastapi_path(route.path)
            methods = [route.method.lower()]
            if route.method == "ANY":
                methods = list(document["paths"].get(path, {}))
            for method in methods:
                operation = document["paths"].get(path, {}).get(method)
                if operation is None:
                    raise ValueError(f"{spec.logical_id} does not serve {route.method} {path}")
                auth, streams = kinds.get((method.upper(), path), (None, False))
                _complete(operation, spec.logical_id, auth=auth, streams=streams)
                paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Guildstack API",
            "version": __version__,
            "description": (
                "Every function's routes as the API gateway serves them. Authenticate with "
                "a Supabase access token (`Authorization: Bearer …`); routes that act in a "
                "workspace name it in `X-Workspace-Id`. Errors are problem+json."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Supabase Auth access token.",
                },
                "streamTicket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "A ticket from `POST …/stream-ticket`, for that stream only.",
                },
            },
        },
    }


def _complete(operation: dict[str, Any], function: str, *, auth: str | None, streams: bool) -> None:
    operation["tags"] = [function]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {422, 503}
    if operation.get("requestBody"):
        statuses |= {400, 413}
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.add(404)
    if auth is not None:
        operation["security"] = [{"bearer": []}]
        statuses |= {401, 429}
    if auth in ("workspace", "stream"):
        statuses |= {400, 403, 404}
        operation.setdefault("parameters", []).insert(
            0,
            {
                "name": "X-Workspace-Id",
                "in": "header",
                "required": auth == "workspace",
                "description": "The workspace the request acts in"
                + (" (not with a ticket)." if auth == "stream" else "."),
                "schema": {"type": "string", "format": "uuid"},
            },
        )
    if auth == "stream":
        operation["security"] = [{"bearer": []}, {"streamTicket": []}]
    for status in sorted(statuses):
        _problem_response(responses, status)
    for code, response in responses.items():
        if code.startswith(("4", "5")):
            _as_problem(response, int(code))
    if streams:
        for code, response in responses.items():
            if code.startswith("2"):
                response["description"] = _SSE_DESCRIPTION
                response["content"] = {"text/event-stream": {"schema": {"type": "string"}}}


def _problem_response(responses: dict[str, Any], status: int) -> None:
    responses.setdefault(str(status), {"description": _MEANING.get(status, "An error.")})


def _as_problem(response: dict[str, Any], status: int) -> None:
    schema = "ValidationProblem" if status == 422 else "Problem"
    if response.get("description") in (None, "Validation Error"):
        response["description"] = _MEANING.get(status, "An error.")
    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMA_REF}{schema}"}}}


def render(document: dict[str, Any]) -> str:
    """The document as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained page listing every operation (no scripts or assets to fetch)."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = ", ".join(sorted(operation.get("responses", {})))
            secured = "🔒 " if operation.get("security") else ""
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{secured}{html.escape(operation.get('summary', ''))}</td>"
                f"<td>{html.escape(operation['tags'][0])}</td><td>{statuses}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Guildstack API</title>"
        "<style>body{font-family:system-ui;margin:2rem}td{padding:.2rem .6rem;"
        "border-bottom:1px solid #ddd}</style></head><body><h1>Guildstack API</h1>"
        "<p>The whole document: <a href='/openapi.json'>/openapi.json</a>. 🔒 needs a bearer"
        " token.</p><table><tr><th>method</th><th>path</th><th>summary</th><th>function</th>"
        f"<th>statuses</th></tr>{''.join(rows)}</table></body></html>"
    )
