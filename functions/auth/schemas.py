"""Request and response models of the Auth function (the HTTP API's Auth routes)."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from guildstack.domain.identity import (
    AccountKind,
    Invite,
    Member,
    Membership,
    Principal,
    Profile,
    Role,
    Session,
    SignedIn,
    Workspace,
)

# A pragmatic syntax check (the identity provider validates deliverability); the
# email-validator package would add ~40 ms to every cold start of this function.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value.lower()


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL, and bcrypt would end a password at the first one.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254, strip_whitespace=True, strict=True),
    AfterValidator(_email),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=72, strict=True), NoNul]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True), NoNul]
Budget = Annotated[Decimal, Field(ge=0, le=1_000_000, decimal_places=2)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupRequest(Request):
    email: Email
    password: Password
    full_name: (
        Annotated[str, StringConstraints(max_length=200, strip_whitespace=True), NoNul] | None
    ) = None


class LoginRequest(Request):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=72, strict=True), NoNul]


class RefreshRequest(Request):
    refresh_token: Annotated[
        str, StringConstraints(min_length=1, max_length=4096, strict=True), NoNul
    ]


class CreateWorkspaceRequest(Request):
    name: Name
    monthly_budget_usd: Budget | None = None


class UpdateWorkspaceRequest(Request):
    name: Name | None = None
    monthly_budget_usd: Budget | None = None
    # Days conversations are kept before the daily retention job deletes them; 0: for good.
    conversation_retention_days: Annotated[int, Field(ge=0, le=3650)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        given = (self.name, self.monthly_budget_usd, self.conversation_retention_days)
        if all(value is None for value in given):
            raise ValueError("give name, monthly_budget_usd or conversation_retention_days")
        return self


class AddMemberRequest(Request):
    email: Email
    role: Role


class UpdateMemberRequest(Request):
    role: Role | None = None
    account_kind: AccountKind | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.role is None and self.account_kind is None:
            raise ValueError("give role or account_kind")
        return self


class UserResponse(BaseModel):
    id: UUID
    email: str | None


class SessionResponse(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str

    @classmethod
    def of(cls, session: Session) -> Self:
        return cls(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
            token_type=session.token_type,
        )


class AuthResponse(BaseModel):
    user: UserResponse
    session: SessionResponse | None

    @classmethod
    def of(cls, signed_in: SignedIn) -> Self:
        return cls(
            user=UserResponse(id=signed_in.user.id, email=signed_in.user.email),
            session=SessionResponse.of(signed_in.session) if signed_in.session else None,
        )


class RefreshResponse(BaseModel):
    session: SessionResponse


class ProfileResponse(BaseModel):
    full_name: str | None
    account_kind: str
    weekly_image_limit: int
    last_active: datetime | None

    @classmethod
    def of(cls, profile: Profile) -> Self:
        return cls(
            full_name=profile.full_name,
            account_kind=profile.account_kind.value,
            weekly_image_limit=profile.weekly_image_limit,
            last_active=profile.last_active,
        )


class MembershipResponse(BaseModel):
    workspace_id: UUID
    name: str
    role: Role

    @classmethod
    def of(cls, membership: Membership) -> Self:
        return cls(workspace_id=membership.workspace_id, name=membership.name, role=membership.role)


class MeResponse(BaseModel):
    user: UserResponse
    profile: ProfileResponse | None
    memberships: list[MembershipResponse]

    @classmethod
    def of(
        cls, principal: Principal, profile: Profile | None, memberships: list[Membership]
    ) -> Self:
        return cls(
            user=UserResponse(id=principal.user_id, email=principal.email),
            profile=ProfileResponse.of(profile) if profile else None,
            memberships=[MembershipResponse.of(m) for m in memberships],
        )


class WorkspaceResponse(BaseModel):
    id: UUID
    name: str
    slug: str
    monthly_budget_usd: float
    created_at: datetime
    role: Role | None
    conversation_retention_days: int | None = None

    @classmethod
    def of(cls, workspace: Workspace) -> Self:
        return cls(
            id=workspace.id,
            name=workspace.name,
            slug=workspace.slug,
            monthly_budget_usd=float(workspace.monthly_budget_usd),
            created_at=workspace.created_at,
            role=workspace.role,
            conversation_retention_days=workspace.conversation_retention_days,
        )


class MemberResponse(BaseModel):
    workspace_id: UUID
    user_id: UUID
    email: str | None
    full_name: str | None
    role: Role
    account_kind: AccountKind
    created_at: datetime

    @classmethod
    def of(cls, member: Member) -> Self:
        return cls(
            workspace_id=member.workspace_id,
            user_id=member.user_id,
            email=member.email,
            full_name=member.full_name,
            role=member.role,
            account_kind=member.account_kind,
            created_at=member.created_at,
        )


class InviteResponse(BaseModel):
    workspace_id: UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, invite: Invite) -> Self:
        return cls(
            workspace_id=invite.workspace_id,
            email=invite.email,
            role=invite.role,
            created_at=invite.created_at,
            expires_at=invite.expires_at,
        )


class HealthResponse(BaseModel):
    status: str
    version: str
    checks: dict[str, str]
