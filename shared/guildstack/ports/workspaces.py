"""Workspaces, members and profiles, bound to one unit of work (the caller's RLS applies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.identity import (
    AccountKind,
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

    async def add_member(self, workspace_id: UUID, email: str, role: Role) -> Member:
        """Add the user with this email; NotFound if nobody has it, Conflict if already a member."""
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
