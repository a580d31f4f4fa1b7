"""Wrap a FastAPI app as a Lambda handler (API Gateway HTTP API, payload v2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from guildstack.observability import get_tracer, logger, metrics

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(app: FastAPI) -> LambdaHandler:
    """A Powertools-decorated Mangum handler for `app`.

    Mangum keeps one event loop per container, so pools created on first use survive
    across invocations. The Tracer wraps the handler on its first invocation.
    """
    from mangum import Mangum
    from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

    adapter = Mangum(
        app,
        lifespan="off",
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
    )
    traced: LambdaHandler | None = None

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = adapter(event, context)
        return result

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal traced
        # Also keeps Powertools from warning about an empty metric set on quiet routes.
        metrics.add_metric(name="Invocations", unit="Count", value=1)
        if traced is None:
            wrapped: LambdaHandler = get_tracer().capture_lambda_handler(
                invoke, capture_response=False
            )
            traced = wrapped
        result: dict[str, Any] = traced(event, context)
        return result

    entry: LambdaHandler = handler
    return entry
