"""TokenGate: a verified token is refused once its account (or session) is gone; positive
answers are kept for a short time per container, refusals never."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest

from guildstack.domain.errors import Unauthorized
from guildstack.domain.identity import Principal
from guildstack.services.tokens import TokenGate


@dataclass
class Directory:
    alive: set[uuid.UUID] = field(default_factory=set)
    sessions: set[uuid.UUID] = field(default_factory=set)
    asked: list[tuple[uuid.UUID, uuid.UUID | None]] = field(default_factory=list)

    async def active(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> bool:
        self.asked.append((user_id, session_id))
        return user_id in self.alive and (session_id is None or session_id in self.sessions)


@dataclass
class Verifier:
    """Tokens are `<user id>:<session id>`."""

    async def verify(self, token: str) -> Principal:
        user, _, session = token.partition(":")
        return Principal(uuid.UUID(user), None, {}, session_id=session or None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gate(directory: Directory, clock: Clock, **kwargs: object) -> TokenGate:
    return TokenGate(Verifier(), directory, ttl_seconds=60, clock=clock, **kwargs)  # type: ignore[arg-type]


async def test_given_a_live_account_then_it_is_asked_once_per_ttl() -> None:
    user, directory, clock = uuid.uuid4(), Directory(), Clock()
    directory.alive.add(user)
    gate = _gate(directory, clock)

    for _ in range(3):
        await gate.verify(f"{user}:")
    clock.now += 61
    await gate.verify(f"{user}:")

    assert len(directory.asked) == 2


async def test_given_an_account_removed_then_refused_once_the_ttl_has_passed() -> None:
    user, directory, clock = uuid.uuid4(), Directory(), Clock()
    directory.alive.add(user)
    gate = _gate(directory, clock)
    await gate.verify(f"{user}:")

    directory.alive.discard(user)
    await gate.verify(f"{user}:")  # still within the time a container trusts its answer
    clock.now += 61
    with pytest.raises(Unauthorized):
        await gate.verify(f"{user}:")


async def test_given_a_refusal_then_it_is_not_remembered() -> None:
    user, directory, clock = uuid.uuid4(), Directory(), Clock()
    gate = _gate(directory, clock)
    with pytest.raises(Unauthorized):
        await gate.verify(f"{user}:")
    directory.alive.add(user)
    assert (await gate.verify(f"{user}:")).user_id == user


async def test_given_session_checks_then_each_session_is_asked_and_a_missing_one_refused() -> None:
    user, session, directory, clock = uuid.uuid4(), uuid.uuid4(), Directory(), Clock()
    directory.alive.add(user)
    directory.sessions.add(session)
    gate = _gate(directory, clock, check_sessions=True)

    await gate.verify(f"{user}:{session}")
    with pytest.raises(Unauthorized):
        await gate.verify(f"{user}:{uuid.uuid4()}")
    with pytest.raises(Unauthorized):
        await gate.verify(f"{user}:")  # no session claim at all
    assert directory.asked == [(user, session), (user, directory.asked[1][1])]


async def test_given_many_accounts_then_the_cache_stays_bounded() -> None:
    directory, clock = Directory(), Clock()
    users = [uuid.uuid4() for _ in range(5)]
    directory.alive.update(users)
    gate = _gate(directory, clock, max_entries=3)
    for user in users:
        await gate.verify(f"{user}:")
    await gate.verify(f"{users[0]}:")  # dropped as the oldest, so asked again
    assert len(directory.asked) == 6


@dataclass
class SignedVerifier:
    """Tokens are `<user id>:<exp>`; counts the verifications it does."""

    calls: int = 0

    async def verify(self, token: str) -> Principal:
        self.calls += 1
        user, _, exp = token.partition(":")
        return Principal(uuid.UUID(user), None, {"exp": float(exp)})


async def test_given_a_token_seen_before_then_it_is_not_verified_again_until_the_ttl() -> None:
    user, directory, clock, verifier = uuid.uuid4(), Directory(), Clock(), SignedVerifier()
    directory.alive.add(user)
    gate = TokenGate(verifier, directory, ttl_seconds=60, clock=clock)
    token = f"{user}:{time.time() + 3600}"

    principals = [await gate.verify(token) for _ in range(5)]
    assert verifier.calls == 1 and {p.user_id for p in principals} == {user}
    clock.now += 61
    directory.alive.clear()  # the account is gone: the next check after the TTL says so
    with pytest.raises(Unauthorized):
        await gate.verify(token)
    assert verifier.calls == 2


async def test_given_a_token_about_to_expire_then_it_is_kept_no_longer_than_its_exp() -> None:
    user, directory, clock, verifier = uuid.uuid4(), Directory(), Clock(), SignedVerifier()
    directory.alive.add(user)
    gate = TokenGate(verifier, directory, ttl_seconds=60, clock=clock)
    token = f"{user}:{time.time() + 5}"

    await gate.verify(token)
    clock.now += 6  # past its exp: verified again (where an expired token is refused)
    await gate.verify(token)
    assert verifier.calls == 2
    expired = f"{user}:{time.time() - 1}"
    await gate.verify(expired), await gate.verify(expired)
    assert verifier.calls == 4
