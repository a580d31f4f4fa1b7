"""Who is calling, and what they may do in a workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from guildstack.domain.principal import Principal
from guildstack.domain.vocabulary import Role

__all__ = [
    "AccountKind",
    "AuthUser",
    "Invite",
    "Member",
    "Membership",
    "Principal",
    "Profile",
    "Role",
    "Session",
    "SignedIn",
    "Workspace",
]


class AccountKind(StrEnum):
    """Account kinds of the personal assistant's users."""

    ADMIN = "admin"
    PARENT = "parent"
    CHILD = "child"
    STANDARD = "standard"


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
    # Conversations older than this are deleted by the daily retention job (None: kept).
    conversation_retention_days: int | None = None


@dataclass(frozen=True)
class Member:
    workspace_id: UUID
    user_id: UUID
    email: str | None
    full_name: str | None
    role: Role
    created_at: datetime
    account_kind: AccountKind = AccountKind.STANDARD


@dataclass(frozen=True)
class Invite:
    """An invitation to a workspace for an email address, whether or not it has an account
    (so the answer never tells): it becomes a membership when the account with that
    confirmed email signs up or next loads its profile."""

    workspace_id: UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


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
