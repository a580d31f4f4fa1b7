"""Workspaces, members and profiles, always read and written as the calling user (RLS)."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import UUID

from guildstack.domain.identity import Member, Membership, Principal, Profile, Role, Workspace
from guildstack.domain.paging import Page, PageRequest


class WorkspaceStore(Protocol):
    async def create(
        self, actor: Principal, name: str, slug: str, monthly_budget_usd: Decimal | None
    ) -> Workspace:
        """Create a workspace with `actor` as its owner, atomically."""
        ...

    async def list_for(self, actor: Principal, page: PageRequest) -> Page[Workspace]: ...

    async def get(self, actor: Principal, workspace_id: UUID) -> Workspace | None:
        """The workspace with the actor's role, or None when the actor is not a member."""
        ...

    async def role_of(self, actor: Principal, workspace_id: UUID) -> Role | None: ...

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
    ) -> Workspace | None: ...

    async def members(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Member]: ...

    async def member(
        self, actor: Principal, workspace_id: UUID, user_id: UUID
    ) -> Member | None: ...

    async def add_member(
        self, actor: Principal, workspace_id: UUID, email: str, role: Role
    ) -> Member:
        """Add the user with this email; NotFound if nobody has it, Conflict if already a member."""
        ...

    async def set_role(
        self, actor: Principal, workspace_id: UUID, user_id: UUID, role: Role
    ) -> Member | None: ...

    async def remove_member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> bool: ...

    async def profile(self, actor: Principal) -> Profile | None: ...

    async def memberships(self, actor: Principal) -> list[Membership]: ...

    async def touch(self, actor: Principal) -> None:
        """Record the actor's activity (profiles.last_active)."""
        ...
