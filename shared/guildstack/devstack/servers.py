"""Run an ASGI app under uvicorn in a background thread, on its own event loop.

Each devstack service gets its own thread and loop, so a function that calls another
stand-in over HTTP (Supabase Auth, the Upstash bridge) never waits on its own loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving `app` on host:port in a daemon thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "server"):
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        # No proxy headers: uvicorn would otherwise take the client's address from an
        # X-Forwarded-For sent over loopback, and every local request comes over loopback,
        # so a client could choose its own address (and a fresh per-address limit).
        # Headers up to 1 MiB reach the app, which answers oversize ones with a 431
        # problem; h11's own limit (16 KiB) would reset the connection or answer plain text.
        self._config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            h11_max_incomplete_event_size=1_048_576,
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._run, name=f"devstack-{name}", daemon=True)
        self._failed: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # reported to start()
            self._failed = exc

    def start(self, timeout: float = 15.0) -> str:
        """Start serving and block until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on {self.url}: {self._failed!r}")
            self._thread.join(0.02)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
