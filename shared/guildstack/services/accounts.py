"""Sign-up, sign-in, sessions and the caller's own account."""

from __future__ import annotations

from dataclasses import dataclass

from guildstack.domain.identity import Membership, Principal, Profile, Session, SignedIn
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
        """Create an account (its profile is created by the database on insert)."""
        return await self._identity.sign_up(email.strip().lower(), password, full_name)

    async def sign_in(self, email: str, password: str) -> SignedIn:
        return await self._identity.sign_in(email.strip().lower(), password)

    async def refresh(self, refresh_token: str) -> Session:
        return await self._identity.refresh(refresh_token)

    async def sign_out(self, access_token: str) -> None:
        await self._identity.sign_out(access_token)

    async def me(self, actor: Principal) -> Me:
        """The caller, their profile and their workspaces; records the activity."""
        async with self._uow(actor) as tx:
            await tx.workspaces.touch()
            profile = await tx.workspaces.profile()
            memberships = await tx.workspaces.memberships()
        return Me(principal=actor, profile=profile, memberships=memberships)
