"""SelfAuditFunction: the daily operations audit, and (on its weekly schedule, whose input
is `{"audit": "weekly"}`) the weekly reflection. Findings are stored in `audits` and listed
by `GET /audits`."""

from __future__ import annotations

from typing import Any

from guildstack.bootstrap import Container
from guildstack.domain.audits import AuditKind
from guildstack.runtime import Handler, background

WEEKLY = "weekly"


def create(container: Container) -> Handler:
    """The function's Lambda handler around a composition root (tests pass their own)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if isinstance(event, dict) and event.get("audit") == WEEKLY:
            findings = background.run(container.audits.weekly())
            audit = AuditKind.REFLECTION
        else:
            findings = background.run(container.audits.daily())
            audit = AuditKind.OPERATIONS
        return {
            "audit": audit.value,
            "findings": len(findings),
            "checks": sorted({f.check.value for f in findings}),
        }

    return handler
