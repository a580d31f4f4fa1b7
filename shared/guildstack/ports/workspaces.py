"""Workspaces, members and profiles, bound to one unit of work (the caller's RLS applies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.identity import (
    AccountKind,
    Invite,
    Member,
    Membership,
    Profile,
    Role,
    Workspace,
)
from guildstack.domain.paging import Page, PageRequest


class WorkspaceRepository(Protocol):
    async def role_of(self, workspace_id: UUID, user_id: UUID | None = None) -> Role | None:
        """The role of `user_id` (default: the transaction's actor) in the workspace; None
        when not a member."""
        ...

    async def create(self, name: str, slug: str, monthly_budget_usd: Decimal | None) -> Workspace:
        """Create a workspace with the actor as its owner."""
        ...

    async def list_mine(self, page: PageRequest) -> Page[Workspace]: ...

    async def get(self, workspace_id: UUID) -> Workspace | None:
        """The workspace with the actor's role, or None when the actor is not a member."""
        ...

    async def update(
        self,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
        conversation_retention_days: int | None = None,
    ) -> Workspace | None:
        """Change what is given (None: unchanged; a retention of 0 keeps conversations for
        good)."""
        ...

    async def members(self, workspace_id: UUID, page: PageRequest) -> Page[Member]: ...

    async def member(self, workspace_id: UUID, user_id: UUID) -> Member | None: ...

    async def invite(self, workspace_id: UUID, email: str, role: Role) -> Invite:
        """Invite this email (again: the role and expiry are renewed); the same answer
        whether or not it has an account. Conflict if it is already a member's."""
        ...

    async def accept_invites(self) -> int:
        """Turn the actor's pending invitations (to their confirmed email) into memberships;
        how many."""
        ...

    async def set_role(self, workspace_id: UUID, user_id: UUID, role: Role) -> Member | None: ...

    async def set_account_kind(
        self, workspace_id: UUID, user_id: UUID, kind: AccountKind
    ) -> Member | None: ...

    async def remove_member(self, workspace_id: UUID, user_id: UUID) -> bool: ...

    async def profile(self) -> Profile | None: ...

    async def memberships(self) -> list[Membership]: ...

    async def touch(self) -> None:
        """Record the actor's activity (profiles.last_active)."""
        ...
