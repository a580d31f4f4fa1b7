"""Sign-in limits per account (AccountService over fakes): failures count whatever the
address, successes and provider outages do not, and a limiter outage stops nobody."""

from __future__ import annotations

import pytest

from guildstack.domain.errors import DependencyUnavailable, RateLimited, Unauthorized
from guildstack.domain.identity import SignedIn
from guildstack.services.accounts import AccountService
from tests.fakes.identity import FakeIdentity
from tests.fakes.ratelimit import CountingLimiter
from tests.fakes.uow import InMemoryUnitOfWork

EMAIL, PASSWORD = "ada@example.com", "right-password"


async def _service(limiter: CountingLimiter) -> tuple[AccountService, FakeIdentity]:
    identity = FakeIdentity()
    await identity.sign_up(EMAIL, PASSWORD, None)
    return AccountService(identity, InMemoryUnitOfWork(), limiter), identity


async def test_given_failures_up_to_the_limit_then_even_the_right_password_waits() -> None:
    service, _ = await _service(CountingLimiter(limit=3))
    for n in range(3):
        with pytest.raises(Unauthorized):
            await service.sign_in(EMAIL, f"guess-{n}")
    with pytest.raises(RateLimited) as held:
        await service.sign_in(" ADA@example.com ", PASSWORD)
    assert held.value.retry_after_seconds > 0


async def test_given_successes_then_they_are_not_counted() -> None:
    limiter = CountingLimiter(limit=2)
    service, _ = await _service(limiter)
    results = [await service.sign_in(EMAIL, PASSWORD) for _ in range(5)]
    assert all(isinstance(r, SignedIn) for r in results)
    assert all(log == [] for log in limiter.hits.values())


async def test_given_the_provider_failing_then_the_attempt_is_not_counted() -> None:
    limiter = CountingLimiter(limit=1)
    service, identity = await _service(limiter)

    async def unavailable(email: str, password: str) -> SignedIn:
        raise DependencyUnavailable("down")

    identity.sign_in = unavailable  # type: ignore[method-assign]
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await service.sign_in(EMAIL, PASSWORD)
    assert all(log == [] for log in limiter.hits.values())


async def test_given_the_limiter_down_then_sign_in_still_works() -> None:
    service, _ = await _service(CountingLimiter(limit=1, down=True))
    assert isinstance(await service.sign_in(EMAIL, PASSWORD), SignedIn)
    with pytest.raises(Unauthorized):
        await service.sign_in(EMAIL, "wrong")


async def test_given_the_key_then_no_email_is_stored_in_clear() -> None:
    limiter = CountingLimiter(limit=5)
    service, _ = await _service(limiter)
    with pytest.raises(Unauthorized):
        await service.sign_in(EMAIL, "wrong")
    assert all(EMAIL not in key for key in limiter.hits)
