"""Wrap a FastAPI app as a Lambda handler (API Gateway HTTP API, payload v2)."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from guildstack.runtime import instrumented

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(app: FastAPI) -> LambdaHandler:
    """A Powertools-decorated Mangum handler for `app`.

    Mangum keeps one event loop per container, so pools created on first use survive
    across invocations.
    """
    from mangum import Mangum
    from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

    adapter = Mangum(
        app,
        lifespan="off",
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
    )

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = adapter(event, context)
        return result

    entry: LambdaHandler = instrumented(invoke)
    return entry
