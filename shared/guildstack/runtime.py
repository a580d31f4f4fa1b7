"""Running async services from Lambda's synchronous handlers.

`background` is one event loop per process, on its own thread, for the whole container's
life: connection pools made on it survive across invocations, and several invocations at
once (the devstack's pollers call one handler from several threads) share it safely.
`instrumented` gives a handler the Powertools logger context, metrics flush and a Tracer
(created on the first invocation, not at import).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from guildstack.observability import get_tracer, logger, metrics

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Any], Any]


class LoopRunner:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    thread = threading.Thread(
                        target=loop.run_forever, name="guildstack-loop", daemon=True
                    )
                    thread.start()
                    self._loop = loop
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `coro` on the loop; the future holds its result or exception."""
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)


background = LoopRunner()


def instrumented(invoke: Handler) -> Handler:
    """`invoke` with the logger's Lambda context, metrics flushed after each invocation and
    the Tracer wrapped around it on first use."""
    traced: Handler | None = None

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    def handler(event: dict[str, Any], context: Any) -> Any:
        nonlocal traced
        metrics.add_metric(name="Invocations", unit="Count", value=1)
        if traced is None:
            traced = get_tracer().capture_lambda_handler(invoke, capture_response=False)
        return traced(event, context)

    entry: Handler = handler
    return entry
