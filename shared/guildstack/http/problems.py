"""application/problem+json responses, and the one mapping from domain errors to HTTP."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from guildstack.domain import errors
from guildstack.observability import logger

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://guildstack.dev/problems/"

STATUS_BY_ERROR: dict[type[errors.GuildstackError], int] = {
    errors.BadRequest: 400,
    errors.InvalidWorkflow: 422,
    errors.InvalidInput: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.RateLimited: 429,
    # The API's status list has no 402: an exhausted budget is a state conflict.
    errors.BudgetExceeded: 402,
    errors.ProviderUnavailable: 502,
    errors.ProviderFailed: 502,
    errors.InvalidModelOutput: 502,
    errors.DependencyUnavailable: 503,
}


# Each status's title (RFC 9110's names; Python's own phrases differ between versions).
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def title_of(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def problem(
    status: int,
    detail: str,
    *,
    request_id: str,
    title: str | None = None,
    errors_: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """One problem+json response: type, title, status, detail, request_id (+ errors)."""
    body = problem_body(status, detail, request_id=request_id, title=title, errors_=errors_)
    merged = {"X-Request-Id": request_id, **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=merged)


def problem_body(
    status: int,
    detail: str,
    *,
    request_id: str,
    title: str | None = None,
    errors_: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    title = title or title_of(status)
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if errors_ is not None:
        body["errors"] = errors_
    return body


def problem_of(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The problem body an error would get as a response (for streams, whose status is
    already sent): domain errors as mapped, anything else a plain 500."""
    if isinstance(exc, errors.GuildstackError):
        field_errors = exc.errors if isinstance(exc, errors.InvalidInput) else None
        return problem_body(
            status_for(exc), exc.detail, request_id=request_id, title=exc.title,
            errors_=field_errors,
        )  # fmt: skip
    return problem_body(500, "An unexpected error occurred.", request_id=request_id)


def status_for(exc: errors.GuildstackError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GuildstackError)  # noqa: S101 - registered for this type only
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited | errors.Overloaded):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    field_errors = exc.errors if isinstance(exc, errors.InvalidInput) else None
    return problem(
        status,
        exc.detail,
        request_id=request_id_of(request),
        title=exc.title,
        errors_=field_errors,
        headers=headers,
    )


def _jsonable_errors(raw: Any) -> list[dict[str, Any]]:
    out = []
    for err in raw:
        out.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    field_errors = _jsonable_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in field_errors):
        return problem(400, "The body is not valid JSON.", request_id=request_id_of(request))
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in field_errors[:5])
    return problem(422, summary, request_id=request_id_of(request), errors_=field_errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else title_of(exc.status_code)
    if exc.status_code == 404 and detail in ("Not Found", title_of(404)):
        detail = f"No route for {request.method} {request.url.path}."
    return problem(
        exc.status_code,
        detail,
        request_id=request_id_of(request),
        headers=dict(exc.headers or {}),
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "An unexpected error occurred.", request_id=request_id_of(request))


def install_problem_handlers(app: FastAPI) -> None:
    """Every error an app can raise leaves it as problem+json with the request id."""
    app.add_exception_handler(errors.GuildstackError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
