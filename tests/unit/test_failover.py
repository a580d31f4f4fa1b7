"""The failover chain and circuit breaker, with scripted providers and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from guildstack.domain.breaker import BreakerState, CircuitBreaker
from guildstack.domain.errors import (
    CircuitOpen,
    InvalidRequest,
    ProviderFailed,
    ProviderUnavailable,
)
from guildstack.domain.models import ChatMessage, Completion, Delta, ModelRef, ModelRequest
from guildstack.services.failover import FailoverChain, RetryPolicy
from tests.fakes.models import ScriptedProvider

REQUEST = ModelRequest(system="", messages=(ChatMessage("user", "hi"),))
CHAIN = (ModelRef("a", "m1"), ModelRef("b", "m2"))


def failure(provider: str, retryable: bool = True, after: float | None = None) -> ProviderFailed:
    return ProviderFailed("down", provider=provider, retryable=retryable, retry_after_seconds=after)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chain_of(
    *providers: ScriptedProvider, clock: Clock | None = None, **kw: object
) -> FailoverChain:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    chain = FailoverChain(
        {p.name: p for p in providers},
        sleep=sleep,
        clock=clock or Clock(),
        jitter=lambda: 1.0,
        **kw,  # type: ignore[arg-type]
    )
    chain.slept = slept  # type: ignore[attr-defined]
    return chain


async def test_given_retryable_failures_then_backoff_grows_and_the_provider_answers() -> None:
    a = ScriptedProvider("a", [failure("a"), failure("a"), "ok"])
    chain = chain_of(a, policy=RetryPolicy(max_attempts=3, base_delay_seconds=0.5))

    result = await chain.complete(CHAIN, REQUEST)

    assert (result.text, result.attempts) == ("ok", 3)
    assert chain.slept == [0.5, 1.0]  # type: ignore[attr-defined]


async def test_given_retry_after_longer_than_allowed_then_fail_over_instead_of_waiting() -> None:
    a = ScriptedProvider("a", [failure("a", after=120)])
    b = ScriptedProvider("b", ["from b"])
    chain = chain_of(a, b)

    result = await chain.complete(CHAIN, REQUEST)

    assert (result.provider, len(a.calls)) == ("b", 1)
    assert chain.slept == []  # type: ignore[attr-defined]


async def test_given_a_non_retryable_failure_then_next_provider_without_retry() -> None:
    a = ScriptedProvider("a", [failure("a", retryable=False)])
    b = ScriptedProvider("b", ["from b"])

    result = await chain_of(a, b).complete(CHAIN, REQUEST)

    assert (result.provider, result.model, len(a.calls)) == ("b", "m2", 1)


async def test_given_an_invalid_request_then_it_propagates_without_failover() -> None:
    a = ScriptedProvider("a", [InvalidRequest("bad")])
    b = ScriptedProvider("b", ["never"])

    with pytest.raises(InvalidRequest):
        await chain_of(a, b).complete(CHAIN, REQUEST)
    assert b.calls == []


async def test_given_repeated_failing_calls_then_the_breaker_opens_and_later_probes() -> None:
    clock = Clock()
    a = ScriptedProvider("a", [failure("a")])
    b = ScriptedProvider("b", ["from b"])
    chain = chain_of(
        a,
        b,
        clock=clock,
        policy=RetryPolicy(max_attempts=2),
        breaker_threshold=4,
        breaker_cooldown_seconds=30,
    )

    for _ in range(3):
        await chain.complete(CHAIN, REQUEST)
    assert chain.breaker("a").state is BreakerState.CLOSED  # 6 attempts, but 3 calls
    await chain.complete(CHAIN, REQUEST)
    assert chain.breaker("a").state is BreakerState.OPEN
    calls = len(a.calls)
    await chain.complete(CHAIN, REQUEST)
    assert len(a.calls) == calls  # skipped while open

    clock.now += 31
    a.script.append("a is back")
    result = await chain.complete(CHAIN, REQUEST)
    assert result.provider == "a"
    assert chain.breaker("a").state is BreakerState.CLOSED


def test_given_a_failed_probe_then_the_breaker_opens_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock, threshold=1, cooldown_seconds=10)
    breaker.record_failure()
    clock.now = 11
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


async def test_given_every_provider_failing_then_unavailable_names_the_chain() -> None:
    a = ScriptedProvider("a", [failure("a")])
    b = ScriptedProvider("b", [failure("b")])

    with pytest.raises(ProviderUnavailable, match="a/m1, b/m2"):
        await chain_of(a, b).complete(CHAIN, REQUEST)


async def test_given_a_stream_failing_before_text_then_it_fails_over() -> None:
    a = ScriptedProvider("a", [failure("a", retryable=False)])
    b = ScriptedProvider("b", ["one two three"])

    items = [i async for i in chain_of(a, b).stream(CHAIN, REQUEST)]

    assert [i.text for i in items if isinstance(i, Delta)] == ["one", "two", "three"]
    assert isinstance(items[-1], Completion) and items[-1].provider == "b"


async def test_given_a_stream_failing_after_text_then_no_failover() -> None:
    class Breaks(ScriptedProvider):
        async def stream(self, model, request):  # type: ignore[no-untyped-def]
            yield Delta("partial")
            raise failure("a")

    a = Breaks("a", ["x"])
    b = ScriptedProvider("b", ["never"])
    seen: list[object] = []

    with pytest.raises(ProviderUnavailable):
        async for item in chain_of(a, b).stream(CHAIN, REQUEST):
            seen.append(item)

    assert seen == [Delta("partial")] and b.calls == []


async def test_given_one_request_failing_every_attempt_then_it_counts_once_toward_the_breaker() -> (
    None
):
    # A poison request retried to exhaustion is one failing call, not a failing provider.
    a = ScriptedProvider("a", [failure("a")])
    chain = chain_of(a, policy=RetryPolicy(max_attempts=5), breaker_threshold=2)

    with pytest.raises(ProviderUnavailable):
        await chain.complete(CHAIN[:1], REQUEST)

    assert len(a.calls) == 5
    assert chain.breaker("a").state is BreakerState.CLOSED


async def test_given_every_circuit_open_then_circuit_open_with_the_wait_and_no_call() -> None:
    clock = Clock()
    a = ScriptedProvider("a", [failure("a")])
    chain = chain_of(a, clock=clock, breaker_threshold=1, breaker_cooldown_seconds=30)
    with pytest.raises(ProviderUnavailable):
        await chain.complete(CHAIN[:1], REQUEST)
    clock.now += 10
    calls = len(a.calls)

    with pytest.raises(CircuitOpen) as raised:
        await chain.complete(CHAIN[:1], REQUEST)

    assert len(a.calls) == calls
    assert raised.value.retry_after_seconds == pytest.approx(20)


async def test_given_a_half_open_probe_rejected_as_a_bad_request_then_the_probe_is_released() -> (
    None
):
    # An error about the request says nothing about the provider: the next call may probe.
    clock = Clock()
    a = ScriptedProvider("a", [failure("a"), InvalidRequest("too long"), "a is back"])
    chain = chain_of(a, clock=clock, policy=RetryPolicy(max_attempts=1), breaker_threshold=1)
    with pytest.raises(ProviderUnavailable):
        await chain.complete(CHAIN[:1], REQUEST)
    clock.now += 31

    with pytest.raises(InvalidRequest):
        await chain.complete(CHAIN[:1], REQUEST)
    result = await chain.complete(CHAIN[:1], REQUEST)

    assert result.text == "a is back"
    assert chain.breaker("a").state is BreakerState.CLOSED


async def test_given_a_half_open_probe_stream_abandoned_then_the_probe_is_released() -> None:
    clock = Clock()
    a = ScriptedProvider("a", [failure("a"), "one two three", "again"])
    chain = chain_of(a, clock=clock, policy=RetryPolicy(max_attempts=1), breaker_threshold=1)
    with pytest.raises(ProviderUnavailable):
        await chain.complete(CHAIN[:1], REQUEST)
    clock.now += 31

    stream = chain.stream(CHAIN[:1], REQUEST)
    assert isinstance(stream, AsyncGenerator)
    assert isinstance(await anext(stream), Delta)
    await stream.aclose()  # the caller went away mid-stream (cancelled, disconnected)

    result = await chain.complete(CHAIN[:1], REQUEST)
    assert result.text == "again"


def test_given_a_probe_never_settled_then_it_expires_after_a_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock, threshold=1, cooldown_seconds=10)
    breaker.record_failure()
    clock.now = 11
    assert breaker.allow() and not breaker.allow()
    clock.now = 22  # the prober died without a verdict
    assert breaker.allow()
