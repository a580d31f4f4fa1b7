"""Sign-up, sign-in, sessions and the caller's own account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from guildstack.domain.errors import Conflict
from guildstack.domain.identity import AuthUser, Membership, Principal, Profile, Session, SignedIn
from guildstack.ports.identity import IdentityProvider
from guildstack.ports.uow import UnitOfWork


@dataclass(frozen=True)
class Me:
    principal: Principal
    profile: Profile | None
    memberships: list[Membership]


class AccountService:
    def __init__(self, identity: IdentityProvider, uow: UnitOfWork) -> None:
        self._identity = identity
        self._uow = uow

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
        return await self._identity.sign_in(email.strip().lower(), password)

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
