"""`GET /audits`: the self-audit's findings about the workspace (admins and owners)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from guildstack.domain.audits import Severity, StoredFinding
from guildstack.domain.paging import PageRequest
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.pagination import ListResponse, list_of, page_request

if TYPE_CHECKING:
    from guildstack.services.audits import SelfAudit

Audits = Annotated["Scoped[SelfAudit]", Depends(in_workspace(lambda c: c.audits))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


class AuditResponse(BaseModel):
    id: UUID
    audit: str
    check: str
    severity: str
    subject: str
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, stored: StoredFinding) -> "AuditResponse":
        f = stored.finding
        return cls(
            id=stored.id,
            audit=f.audit.value,
            check=f.check.value,
            severity=f.severity.value,
            subject=f.subject,
            details=f.details,
            created_at=stored.created_at,
        )


@router.get("/audits")
async def list_audits(
    ws: Audits, paging: Paging, severity: Severity | None = None
) -> ListResponse[AuditResponse]:
    """Findings of the daily operations audit and the weekly reflection, newest first."""
    page = await ws.service.list(ws.principal, ws.workspace_id, paging, severity)
    return list_of(page, AuditResponse.of)
