"""Sign-up, sign-in, sessions and the caller's own account."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from guildstack.domain.errors import Conflict, RateLimited, Unauthorized
from guildstack.domain.identity import AuthUser, Membership, Principal, Profile, Session, SignedIn
from guildstack.observability import logger
from guildstack.ports.identity import IdentityProvider
from guildstack.ports.ratelimit import RateDecision, RateLimiter
from guildstack.ports.uow import UnitOfWork


@dataclass(frozen=True)
class Me:
    principal: Principal
    profile: Profile | None
    memberships: list[Membership]


class AccountService:
    def __init__(
        self,
        identity: IdentityProvider,
        uow: UnitOfWork,
        login_failures: RateLimiter | None = None,
    ) -> None:
        self._identity = identity
        self._uow = uow
        self._login_failures = login_failures

    async def sign_up(self, email: str, password: str, full_name: str | None) -> SignedIn:
        """Create an account (its profile is created by the database on insert).

        An email that already has an account gets what Supabase Auth answers when email
        confirmations are on: a user (with an id of no account) and no session, so the
        answer does not tell whether the email is registered. (With confirmations off, a
        new account's answer carries a session; only confirmations make the two alike.)"""
        email = email.strip().lower()
        try:
            return await self._identity.sign_up(email, password, full_name)
        except Conflict:
            return SignedIn(AuthUser(id=uuid.uuid4(), email=email), session=None)

    async def sign_in(self, email: str, password: str) -> SignedIn:
        """Password sign-in, with failures limited per account whatever the address: over
        the limit the account's sign-ins wait (429, Retry-After) until its oldest failure
        leaves the window, right password or not. Each attempt is counted before it is
        made (so simultaneous guesses cannot overshoot the limit) and un-counted when it
        succeeds (so only failures count)."""
        email = email.strip().lower()
        key = "email:" + hashlib.sha256(email.encode()).hexdigest()  # no addresses in Redis
        attempt = await self._count_attempt(key)
        try:
            signed_in = await self._identity.sign_in(email, password)
        except Unauthorized:
            raise
        except Exception:
            await self._uncount(key, attempt)  # not a wrong password: the provider failed
            raise
        await self._uncount(key, attempt)
        return signed_in

    async def _count_attempt(self, key: str) -> RateDecision | None:
        if self._login_failures is None:
            return None
        try:
            decision = await self._login_failures.hit(key)
        except Exception:  # noqa: BLE001 - an outage of the limiter must not stop sign-ins
            logger.warning("login failure limiter unavailable; sign-in allowed")
            return None
        if not decision.allowed:
            raise RateLimited(
                "Too many failed sign-ins for this account; try again later.",
                retry_after_seconds=decision.retry_after_seconds,
            )
        return decision

    async def _uncount(self, key: str, attempt: RateDecision | None) -> None:
        if self._login_failures is None or attempt is None:
            return
        try:
            await self._login_failures.release(key, attempt.ticket)
        except Exception:  # noqa: BLE001 - at worst one success counts as a failure
            logger.warning("login failure limiter unavailable; an attempt stays counted")

    async def refresh(self, refresh_token: str) -> Session:
        return await self._identity.refresh(refresh_token)

    async def sign_out(self, access_token: str) -> None:
        await self._identity.sign_out(access_token)

    async def me(self, actor: Principal) -> Me:
        """The caller, their profile and their workspaces (joining those they were invited
        to); records the activity."""
        async with self._uow(actor) as tx:
            await tx.workspaces.accept_invites()
            await tx.workspaces.touch()
            profile = await tx.workspaces.profile()
            memberships = await tx.workspaces.memberships()
        return Me(principal=actor, profile=profile, memberships=memberships)
