"""Upstash's Redis REST API in front of a real redis-server.

Enough of the protocol that the real `upstash-redis` (sync and async) and
`upstash-ratelimit` clients work unchanged: `POST /` with one command as a JSON array,
`POST /pipeline` and `POST /multi-exec` with a list of commands, a bearer token, and the
`Upstash-Encoding: base64` response encoding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Reply = Any


def _encode(value: Reply, base64_strings: bool) -> Reply:
    """Redis replies as Upstash's JSON: bytes become text (or base64), lists recurse."""
    if isinstance(value, bytes | bytearray):
        if base64_strings:
            # The clients decode every string except a bare "OK" status.
            return "OK" if value == b"OK" else base64.b64encode(value).decode()
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_encode(v, base64_strings) for v in value]
    if isinstance(value, float):
        return _encode(repr(value).encode(), base64_strings)
    return value


class ScriptShim:
    """Lets Redis 6.2 run scripts written for Upstash (Redis 7 syntax).

    Upstash's clients send Lua with a `#!lua flags=...` shebang, which Redis 6.2 cannot
    parse, and may use EVAL_RO / EVALSHA_RO. The shebang is dropped, read-only variants
    run as their plain forms, and SHA1s the client computed over the original text are
    mapped to the SHA1s Redis knows.
    """

    def __init__(self) -> None:
        self._sha_by_original: dict[str, str] = {}

    def rewrite(self, command: list[Any]) -> list[Any]:
        name = str(command[0]).upper()
        if name in ("EVAL", "EVAL_RO") and len(command) > 1:
            return ["EVAL", self._strip(str(command[1])), *command[2:]]
        if name in ("EVALSHA", "EVALSHA_RO") and len(command) > 1:
            sha = str(command[1]).lower()
            return ["EVALSHA", self._sha_by_original.get(sha, sha), *command[2:]]
        if name == "SCRIPT" and len(command) > 2 and str(command[1]).upper() == "LOAD":
            return ["SCRIPT", "LOAD", self._strip(str(command[2]))]
        return command

    def remember(self, command: list[Any], reply: Reply) -> Reply:
        """After SCRIPT LOAD, answer with the SHA1 of the script the client sent."""
        if str(command[0]).upper() == "SCRIPT" and len(command) > 2 and isinstance(reply, bytes):
            original = hashlib.sha1(str(command[2]).encode(), usedforsecurity=False).hexdigest()
            self._sha_by_original[original] = reply.decode()
            return original.encode()
        return reply

    def _strip(self, script: str) -> str:
        if not script.startswith("#!"):
            return script
        original = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        stripped = script.split("\n", 1)[1] if "\n" in script else ""
        self._sha_by_original[original] = hashlib.sha1(
            stripped.encode(), usedforsecurity=False
        ).hexdigest()
        return stripped


def _error(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, NoScriptError):  # redis-py drops the error code; Upstash keeps it
        return f"NOSCRIPT {text}"
    return text if text[:4].isupper() and " " in text else f"ERR {text}"


def create_bridge_app(redis_url: str, token: str) -> Starlette:
    """An ASGI app speaking Upstash REST, backed by the Redis at `redis_url`."""
    # RESP2 and no response callbacks: the client must see Redis's raw replies.
    # No read timeout: a blocking command (XREAD BLOCK) holds its request, as on Upstash.
    client = aioredis.Redis.from_url(
        redis_url, protocol=2, decode_responses=False, socket_timeout=None
    )
    client.response_callbacks.clear()
    expected = f"Bearer {token}".encode()
    scripts = ScriptShim()

    execute: Callable[..., Awaitable[Reply]] = client.execute_command

    async def run(command: list[Any]) -> Reply:
        return scripts.remember(command, await execute(*scripts.rewrite(command)))

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, expected)

    async def commands_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except json.JSONDecodeError:
            return None

    def wants_base64(request: Request) -> bool:
        return request.headers.get("upstash-encoding", "").lower() == "base64"

    def valid_command(command: Any) -> bool:
        return (
            isinstance(command, list)
            and len(command) > 0
            and all(isinstance(part, str | int | float) for part in command)
        )

    async def single(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        command = await commands_of(request)
        if not valid_command(command):
            return JSONResponse({"error": "ERR command must be a JSON array"}, status_code=400)
        try:
            reply = await run(command)
        except ResponseError as exc:
            return JSONResponse({"error": _error(exc)}, status_code=400)
        except RedisError as exc:
            return JSONResponse({"error": _error(exc)}, status_code=500)
        return JSONResponse({"result": _encode(reply, wants_base64(request))})

    async def batch(request: Request, transaction: bool) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        commands = await commands_of(request)
        if not isinstance(commands, list) or not all(valid_command(c) for c in commands):
            return JSONResponse({"error": "ERR body must be a list of commands"}, status_code=400)
        pipe = client.pipeline(transaction=transaction)
        for command in commands:
            pipe.execute_command(*scripts.rewrite(command))
        try:
            raw = await pipe.execute(raise_on_error=False)
        except RedisError as exc:  # EXECABORT and friends: the whole transaction failed
            return JSONResponse({"error": _error(exc)}, status_code=400)
        replies = [scripts.remember(c, r) for c, r in zip(commands, raw, strict=True)]
        encoded = [
            {"error": _error(reply)}
            if isinstance(reply, Exception)
            else {"result": _encode(reply, wants_base64(request))}
            for reply in replies
        ]
        return JSONResponse(encoded)

    async def pipeline(request: Request) -> JSONResponse:
        return await batch(request, transaction=False)

    async def multi_exec(request: Request) -> JSONResponse:
        return await batch(request, transaction=True)

    return Starlette(
        routes=[
            Route("/", single, methods=["POST"]),
            Route("/pipeline", pipeline, methods=["POST"]),
            Route("/multi-exec", multi_exec, methods=["POST"]),
        ]
    )
