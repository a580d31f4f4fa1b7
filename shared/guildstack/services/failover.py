"""Retries with backoff and jitter, failover along a tier's chain, a breaker per provider.

Providers never retry by themselves (their SDKs run with `max_retries=0`): this is the one
retry loop, so the attempts a call makes are exactly the ones counted here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from guildstack.domain.breaker import Admission, CircuitBreaker
from guildstack.domain.errors import CircuitOpen, ProviderFailed, ProviderUnavailable
from guildstack.domain.models import Completion, Delta, ModelRef, ModelRequest, StreamItem
from guildstack.observability import logger
from guildstack.ports.models import ModelProvider


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # per provider in the chain
    base_delay_seconds: float = 0.25
    max_delay_seconds: float = 4.0
    # A provider asking us to wait longer than this is skipped rather than waited for.
    max_retry_after_seconds: float = 10.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """Full jitter on an exponential ceiling; at least what the provider asked for."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        wait = ceiling * jitter
        return float(max(wait, retry_after)) if retry_after is not None else float(wait)


class FailoverChain:
    """Calls the first healthy provider of a chain, retrying and failing over as needed."""

    def __init__(
        self,
        providers: Mapping[str, ModelProvider],
        *,
        policy: RetryPolicy | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,  # noqa: S311 - backoff, not crypto
    ) -> None:
        self._providers = dict(providers)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._breakers = {
            name: CircuitBreaker(clock, breaker_threshold, breaker_cooldown_seconds)
            for name in self._providers
        }

    @property
    def available(self) -> frozenset[str]:
        return frozenset(self._providers)

    def breaker(self, provider: str) -> CircuitBreaker:
        return self._breakers[provider]

    async def complete(self, chain: Sequence[ModelRef], request: ModelRequest) -> Completion:
        attempts = 0
        last: ProviderFailed | None = None
        for ref, provider, breaker in self._candidates(chain):
            call = _Call(breaker)
            try:
                for attempt in call.attempts(self._policy.max_attempts, ref):
                    attempts += 1
                    try:
                        result = await provider.complete(ref.model, request)
                    except ProviderFailed as exc:
                        call.failed = True
                        last = exc
                        if not await self._backoff(ref, attempt, exc):
                            break
                        continue
                    call.succeeded()
                    return replace(result, attempts=attempts)
            finally:
                call.settle()
        raise self._unavailable(chain, last, attempts)

    async def stream(
        self, chain: Sequence[ModelRef], request: ModelRequest
    ) -> AsyncIterator[StreamItem]:
        """Deltas then the completion. Retries and failover happen only before the first
        delta: once text has reached the caller a failure ends the stream."""
        attempts = 0
        last: ProviderFailed | None = None
        for ref, provider, breaker in self._candidates(chain):
            call = _Call(breaker)
            try:
                for attempt in call.attempts(self._policy.max_attempts, ref):
                    attempts += 1
                    started = False
                    try:
                        async for item in provider.stream(ref.model, request):
                            if isinstance(item, Delta):
                                started = True
                                yield item
                            else:
                                call.succeeded()
                                yield replace(item, attempts=attempts)
                                return
                        raise ProviderFailed(
                            "stream ended without a result", provider=ref.provider, retryable=True
                        )
                    except ProviderFailed as exc:
                        call.failed = True
                        if started:
                            raise ProviderUnavailable(
                                f"{ref} failed while streaming: {exc.detail}"
                            ) from exc
                        last = exc
                        if not await self._backoff(ref, attempt, exc):
                            break
            finally:
                call.settle()
        raise self._unavailable(chain, last, attempts)

    def _candidates(
        self, chain: Sequence[ModelRef]
    ) -> Iterator[tuple[ModelRef, ModelProvider, CircuitBreaker]]:
        """The chain's models whose provider is configured, in order."""
        for ref in chain:
            provider, breaker = self._providers.get(ref.provider), self._breakers.get(ref.provider)
            if provider is not None and breaker is not None:
                yield ref, provider, breaker

    def _unavailable(
        self, chain: Sequence[ModelRef], last: ProviderFailed | None, attempts: int
    ) -> ProviderUnavailable:
        names = ", ".join(str(ref) for ref in chain) or "no configured model"
        if attempts == 0 and last is None:
            waits = [b.retry_after() for _, _, b in self._candidates(chain)]
            if waits:
                return CircuitOpen(
                    f"No provider was tried ({names}): every circuit is open.", min(waits)
                )
        why = f": last error {last.detail}" if last else ": no provider is configured"
        return ProviderUnavailable(f"No provider answered ({names}){why}.")

    async def _backoff(self, ref: ModelRef, attempt: int, exc: ProviderFailed) -> bool:
        """Wait before the next attempt at this provider; False: move on to the next one."""
        logger.warning(
            "model call failed",
            extra={
                "provider": ref.provider,
                "model": ref.model,
                "attempt": attempt,
                "status": exc.status,
                "retryable": exc.retryable,
            },
        )
        policy = self._policy
        if not exc.retryable or attempt >= policy.max_attempts:
            return False
        retry_after = exc.retry_after_seconds
        if retry_after is not None and retry_after > policy.max_retry_after_seconds:
            return False
        await self._sleep(policy.delay(attempt, retry_after, self._jitter()))
        return True


class _Call:
    """One call's dealings with one provider's breaker. However many attempts the call
    makes, it counts as one failure at most (a request that keeps failing is not a provider
    that keeps failing), and a probe it claimed is settled or released when it ends."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._probe = False
        self._done = False
        self.failed = False

    def attempts(self, max_attempts: int, ref: ModelRef) -> Iterator[int]:
        """Attempt numbers at this provider, while its breaker lets calls through."""
        for attempt in range(1, max_attempts + 1):
            admission = self._breaker.admit() if not self._probe else Admission.DENIED
            if admission is Admission.DENIED:
                if attempt == 1:
                    logger.info("provider skipped: circuit open", extra={"provider": ref.provider})
                return
            self._probe = admission is Admission.PROBE
            yield attempt

    def succeeded(self) -> None:
        self._breaker.record_success()
        self._done = True

    def settle(self) -> None:
        if self._done:
            return
        self._done = True
        if self.failed:
            self._breaker.record_failure()
        elif self._probe:
            self._breaker.release_probe()
