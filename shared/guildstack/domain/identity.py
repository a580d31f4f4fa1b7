"""Who is calling, and what they may do in a workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID


class Role(StrEnum):
    """Workspace roles, strongest first: owner > admin > operator > analyst > viewer."""

    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {
    Role.OWNER: 5,
    Role.ADMIN: 4,
    Role.OPERATOR: 3,
    Role.ANALYST: 2,
    Role.VIEWER: 1,
}


class AccountKind(StrEnum):
    """Account kinds from source 000 (personal assistant users)."""

    ADMIN = "admin"
    PARENT = "parent"
    CHILD = "child"
    STANDARD = "standard"


@dataclass(frozen=True)
class Principal:
    """An authenticated user, as proven by a verified access token."""

    user_id: UUID
    email: str | None
    claims: dict[str, Any] = field(repr=False)
    session_id: str | None = None


@dataclass(frozen=True)
class Session:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - an OAuth token type, not a secret


@dataclass(frozen=True)
class AuthUser:
    id: UUID
    email: str | None


@dataclass(frozen=True)
class SignedIn:
    user: AuthUser
    session: Session | None


@dataclass(frozen=True)
class Workspace:
    id: UUID
    name: str
    slug: str
    monthly_budget_usd: Decimal
    created_at: datetime
    role: Role | None = None


@dataclass(frozen=True)
class Member:
    workspace_id: UUID
    user_id: UUID
    email: str | None
    full_name: str | None
    role: Role
    created_at: datetime


@dataclass(frozen=True)
class Profile:
    id: UUID
    email: str | None
    full_name: str | None
    account_kind: AccountKind
    weekly_image_limit: int
    last_active: datetime | None


@dataclass(frozen=True)
class Membership:
    workspace_id: UUID
    name: str
    role: Role
