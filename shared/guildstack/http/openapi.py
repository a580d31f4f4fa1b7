"""The error responses an app's OpenAPI document declares: every problem+json answer the
shared machinery can give a route, added to each operation when the document is built.

- every route: 400 (body not JSON, an id or header not in canonical form), 404 (not found,
  or not a member: a workspace's existence is never revealed), 422 (invalid input),
  429 (rate limits, with Retry-After), 431 (headers too large), 503 (a dependency down or
  every database connection busy, with Retry-After);
- routes with a body: 413 (body too large);
- routes that take a token: 401 (missing, invalid or expired token) and 403 (role too low);
  those that change something also 409 (the change conflicts with the state: a retired
  agent, a finished run, a name taken; the database refuses such changes itself);
- what a route's own use case adds (401 for credentials, 402 budget, 502 model failure)
  is declared on the route with `responses=problems(...)`.
"""

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_NAME = "Problem"
_REF = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
EVERY_ROUTE = (400, 404, 422, 429, 431, 503)
WITH_BODY = (413,)
AUTHENTICATED = (401, 403)
AUTHENTICATED_WRITE = (409,)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Marks a dependency that proves who is calling (see `guildstack.http.auth`).
AUTHENTICATES = "__guildstack_authenticates__"


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": _REF}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem+json answers its use case adds."""
    return {status: problem_response(status) for status in statuses}


# A route that calls a model: the budget is spent (402), every provider failed (502).
MODEL_CALL = problems(402, 502)


def event_stream(description: str = "An event stream.") -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose success is `text/event-stream`."""
    return {200: {"description": description, "content": {"text/event-stream": {}}}}


D = TypeVar("D")


def authenticates(dependency: D) -> D:
    """Mark `dependency` as one that proves who is calling (so its routes declare 401/403)."""
    setattr(dependency, AUTHENTICATES, True)
    return dependency


def _takes_token(dependant: Dependant) -> bool:
    return any(
        getattr(dep.call, AUTHENTICATES, False) or _takes_token(dep)
        for dep in dependant.dependencies
    )


def statuses_of(route: APIRoute) -> set[int]:
    statuses = set(EVERY_ROUTE)
    if set(route.methods or ()) & _BODY_METHODS:
        statuses.update(WITH_BODY)
    if _takes_token(route.dependant):
        statuses.update(AUTHENTICATED)
        if set(route.methods or ()) & _BODY_METHODS:
            statuses.update(AUTHENTICATED_WRITE)
    return statuses


def install_problem_responses(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Have the app's document (built once, when first asked for) declare every
    operation's problem responses; `routers` are the ones the app includes."""
    build = app.openapi
    routes = [route for router in routers for route in _api_routes(router.routes)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components[PROBLEM_SCHEMA_NAME] = PROBLEM_SCHEMA
        paths = document.get("paths", {})
        for route in routes:
            for method in route.methods or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                _only_event_stream(responses)
                # FastAPI's own 422 names its validation schema; ours is a problem.
                for status in sorted(statuses_of(route)):
                    responses.setdefault(str(status), problem_response(status))
                    if status == 422:
                        responses["422"] = problem_response(422)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _only_event_stream(responses: dict[str, Any]) -> None:
    """A success declared as an event stream is that alone (FastAPI adds its JSON default)."""
    for status, response in responses.items():
        content = response.get("content") or {}
        if status.startswith("2") and "text/event-stream" in content:
            response["content"] = {"text/event-stream": content["text/event-stream"]}


def _api_routes(routes: Iterable[Any]) -> Iterable[APIRoute]:
    return (route for route in routes if isinstance(route, APIRoute) and route.include_in_schema)
