"""AuthFunction: health, identity, workspaces and members (the HTTP API's Auth routes)."""

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse

from functions.auth.schemas import (
    AddMemberRequest,
    AuthResponse,
    CreateWorkspaceRequest,
    HealthResponse,
    InviteResponse,
    LoginRequest,
    MemberResponse,
    MeResponse,
    RefreshRequest,
    RefreshResponse,
    SessionResponse,
    SignupRequest,
    UpdateMemberRequest,
    UpdateWorkspaceRequest,
    WorkspaceResponse,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.paging import PageRequest
from guildstack.http.app import create_app
from guildstack.http.auth import (
    CurrentUser,
    address_of,
    bearer_token,
    container_of,
    enforce_rate_limit,
    service,
)
from guildstack.http.openapi import problems
from guildstack.http.pagination import ListResponse, list_of, page_request
from guildstack.observability import metrics

if TYPE_CHECKING:
    from guildstack.services.accounts import AccountService
    from guildstack.services.health import HealthService
    from guildstack.services.workspaces import WorkspaceService

Accounts = Annotated["AccountService", Depends(service(lambda c: c.accounts))]
Workspaces = Annotated["WorkspaceService", Depends(service(lambda c: c.workspaces))]
Health = Annotated["HealthService", Depends(service(lambda c: c.health))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


async def limit_by_client(request: Request) -> None:
    """Unauthenticated routes are limited per client address (slows password guessing)."""
    limiter = container_of(request).public_rate_limiter
    await enforce_rate_limit(limiter, f"ip:{address_of(request)}")


Public = Depends(limit_by_client)


@router.get("/health", response_model=HealthResponse)
async def health(request: Request, probes: Health) -> JSONResponse:
    report = await probes.report()
    body = HealthResponse(
        status=report.status,
        version=container_of(request).settings.version,
        checks=report.checks,
    )
    code = status.HTTP_200_OK if report.serving else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(), status_code=code)


@router.post("/auth/signup", status_code=201, dependencies=[Public])
async def signup(body: SignupRequest, accounts: Accounts) -> AuthResponse:
    signed_in = await accounts.sign_up(body.email, body.password, body.full_name)
    metrics.add_metric(name="SignUps", unit="Count", value=1)
    return AuthResponse.of(signed_in)


@router.post("/auth/login", dependencies=[Public], responses=problems(401))
async def login(body: LoginRequest, accounts: Accounts) -> AuthResponse:
    return AuthResponse.of(await accounts.sign_in(body.email, body.password))


@router.post("/auth/refresh", dependencies=[Public], responses=problems(401))
async def refresh(body: RefreshRequest, accounts: Accounts) -> RefreshResponse:
    session = await accounts.refresh(body.refresh_token)
    return RefreshResponse(session=SessionResponse.of(session))


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, _: CurrentUser, accounts: Accounts) -> Response:
    await accounts.sign_out(bearer_token(request))
    return Response(status_code=204)


@router.get("/auth/me")
async def me(user: CurrentUser, accounts: Accounts) -> MeResponse:
    mine = await accounts.me(user)
    return MeResponse.of(mine.principal, mine.profile, mine.memberships)


@router.post("/workspaces", status_code=201)
async def create_workspace(
    body: CreateWorkspaceRequest, user: CurrentUser, workspaces: Workspaces, response: Response
) -> WorkspaceResponse:
    workspace = await workspaces.create(user, body.name, body.monthly_budget_usd)
    response.headers["Location"] = f"/workspaces/{workspace.id}"
    metrics.add_metric(name="WorkspacesCreated", unit="Count", value=1)
    return WorkspaceResponse.of(workspace)


@router.get("/workspaces")
async def list_workspaces(
    user: CurrentUser, workspaces: Workspaces, paging: Paging
) -> ListResponse[WorkspaceResponse]:
    page = await workspaces.list(user, paging)
    return list_of(page, WorkspaceResponse.of)


@router.get("/workspaces/{workspace_id}")
async def get_workspace(
    workspace_id: UUID, user: CurrentUser, workspaces: Workspaces
) -> WorkspaceResponse:
    return WorkspaceResponse.of(await workspaces.get(user, workspace_id))


@router.patch("/workspaces/{workspace_id}")
async def update_workspace(
    workspace_id: UUID, body: UpdateWorkspaceRequest, user: CurrentUser, workspaces: Workspaces
) -> WorkspaceResponse:
    workspace = await workspaces.update(
        user,
        workspace_id,
        name=body.name,
        monthly_budget_usd=body.monthly_budget_usd,
        conversation_retention_days=body.conversation_retention_days,
    )
    return WorkspaceResponse.of(workspace)


@router.get("/workspaces/{workspace_id}/members")
async def list_members(
    workspace_id: UUID, user: CurrentUser, workspaces: Workspaces, paging: Paging
) -> ListResponse[MemberResponse]:
    page = await workspaces.members(user, workspace_id, paging)
    return list_of(page, MemberResponse.of)


@router.post("/workspaces/{workspace_id}/members", status_code=202)
async def add_member(
    workspace_id: UUID, body: AddMemberRequest, user: CurrentUser, workspaces: Workspaces
) -> InviteResponse:
    """An invitation: the same answer whether or not the email has an account."""
    invite = await workspaces.invite_member(user, workspace_id, body.email, body.role)
    return InviteResponse.of(invite)


@router.patch("/workspaces/{workspace_id}/members/{user_id}")
async def change_member_role(
    workspace_id: UUID,
    user_id: UUID,
    body: UpdateMemberRequest,
    user: CurrentUser,
    workspaces: Workspaces,
) -> MemberResponse:
    member = await workspaces.update_member(
        user, workspace_id, user_id, role=body.role, account_kind=body.account_kind
    )
    return MemberResponse.of(member)


@router.delete("/workspaces/{workspace_id}/members/{user_id}", status_code=204)
async def remove_member(
    workspace_id: UUID, user_id: UUID, user: CurrentUser, workspaces: Workspaces
) -> Response:
    await workspaces.remove_member(user, workspace_id, user_id)
    return Response(status_code=204)


def create(container: Container) -> FastAPI:
    """The Auth function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Auth", routers=[router])
    app.state.container = container
    return app


app = create(build())
