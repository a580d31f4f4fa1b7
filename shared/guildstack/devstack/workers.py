"""Functions in processes of their own (`guildstack dev --workers N`).

Lambda runs each function in its own containers; the devstack normally mounts every app in
the gateway's one interpreter, so a local load test measures one Python process for the
whole API. With workers, each HTTP function is served by its own uvicorn (N processes,
sharing a port) started from the same environment, and the gateway forwards its routes to
it, streaming responses (event streams included) as they are written.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from guildstack.devstack.servers import free_port

# Hop-by-hop headers are the connection's, not the request's.
_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"host",
     b"proxy-connection", b"trailer", b"content-length"}
)  # fmt: skip


class ProxyApp:
    """An ASGI app that forwards each request to `base_url` and streams the answer back."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._clients: dict[int, httpx.AsyncClient] = {}

    def _client(self) -> httpx.AsyncClient:
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
            self._clients[loop] = httpx.AsyncClient(
                base_url=self.base_url, timeout=httpx.Timeout(None, connect=5), limits=limits
            )
        return self._clients[loop]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in _HOP]
        client = self._client()
        request = client.build_request(
            scope["method"], target, headers=headers, content=bytes(body)
        )
        response = await client.send(request, stream=True)
        # A client that leaves ends the forwarded request too (an event stream would
        # otherwise be read from the function for ever).
        left = asyncio.ensure_future(_disconnected(receive))
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": out})  # fmt: skip
            async for chunk in response.aiter_raw():
                if left.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            left.cancel()
            await response.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def start_function_processes(
    root: Path, modules: Iterable[tuple[str, str]], processes: int, stack: ExitStack
) -> dict[str, ProxyApp]:
    """One uvicorn per `(logical id, app module)`, with `processes` workers each; the
    gateway's app for each function (a proxy to it)."""
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    for logical_id, module in modules:
        port = free_port()
        command = [
            sys.executable, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(processes), "--lifespan", "off",
            "--no-proxy-headers", "--log-level", "warning",
            "--h11-max-incomplete-event-size", "1048576",
        ]  # fmt: skip
        process = subprocess.Popen(command, cwd=root, env=dict(os.environ))  # noqa: S603
        stack.callback(_stop, process)
        started[logical_id] = (process, port)
    for logical_id, (process, port) in started.items():
        _wait_until_listening(process, port, logical_id)
    return {lid: ProxyApp(f"http://127.0.0.1:{port}") for lid, (_, port) in started.items()}


def _wait_until_listening(process: subprocess.Popen[Any], port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name}'s process exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} within 60 s")


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
