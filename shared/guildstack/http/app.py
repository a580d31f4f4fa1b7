"""The FastAPI app factory every function uses."""

from collections.abc import Iterable

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from guildstack.config import Settings
from guildstack.http.ids import canonical_path_ids
from guildstack.http.middleware import RequestContextMiddleware
from guildstack.http.openapi import install_problem_responses
from guildstack.http.problems import install_problem_handlers


def create_app(
    settings: Settings,
    *,
    title: str,
    routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """A FastAPI app with problem+json errors, request ids, the body limit and CORS.

    Lifespan is off: under Mangum it would run on every invocation, so resources are
    created lazily on first use instead (see `guildstack.bootstrap`).
    """
    app = FastAPI(
        title=title,
        version=settings.version,
        docs_url=None if settings.stage in ("staging", "prod") else "/docs",
        redoc_url=None,
        openapi_url=None if settings.stage in ("staging", "prod") else "/openapi.json",
        # Every route: ids in the path only in canonical form.
        dependencies=[Depends(canonical_path_ids)],
    )
    routers = list(routers)
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)
    install_problem_responses(app, routers)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Workspace-Id", "Last-Event-ID"],
            expose_headers=["X-Request-Id", "Retry-After", "Location"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
