"""AuthFunction: health, identity, workspaces and members."""

from __future__ import annotations

from fastapi import APIRouter

from guildstack.config import get_settings
from guildstack.http.app import create_app

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, object]:
    """Liveness and dependency checks (filled in by the auth issue)."""
    return {"status": "ok", "version": get_settings().version, "checks": {}}


app = create_app(get_settings(), title="Guildstack Auth", routers=[router])
