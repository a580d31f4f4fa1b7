"""What is cached, for how long, and when a model request's answer may be reused.

Each cache type has its own time to live; every entry's key carries its type's generation
number per workspace, so a write bumps the generation and every older entry of that type
is unreachable at once (and expires on its own).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from uuid import UUID

from guildstack.domain.models import ModelRequest

HOUR = 3600
DAY = 24 * HOUR


class CacheType(StrEnum):
    AGENT_RESPONSE = "agent_response"  # deterministic model answers
    MARKET_DATA = "market_data"
    COMPETITOR_PROFILE = "competitor_profile"
    PERSONA = "persona"
    CAMPAIGN_RESULT = "campaign_result"
    PREFERENCES = "preferences"
    AGENT_CATALOG = "agent_catalog"  # a workspace's effective agent list
    WORKSPACE_SETTINGS = "workspace_settings"
    USAGE_SUMMARY = "usage_summary"
    CODEX = "codex"  # the company codex, per completed onboarding


TTL_SECONDS: dict[CacheType, int] = {
    CacheType.AGENT_RESPONSE: 36 * HOUR,  # agent responses: 24-48 h
    CacheType.MARKET_DATA: 7 * DAY,
    CacheType.COMPETITOR_PROFILE: 7 * DAY,
    CacheType.PERSONA: 30 * DAY,
    CacheType.CAMPAIGN_RESULT: 365 * DAY,
    CacheType.PREFERENCES: 30 * DAY,
    CacheType.AGENT_CATALOG: HOUR,
    CacheType.WORKSPACE_SETTINGS: HOUR,
    # The closed days of a usage window: rows are only ever inserted, and a day closes an
    # hour after midnight (UTC), so what is stored cannot change; a new day is a new key.
    CacheType.USAGE_SUMMARY: DAY,
    # Keyed by the onboarding run it was read from: the next completed onboarding is a new
    # key, so nothing needs invalidating.
    CacheType.CODEX: 30 * DAY,
}


def response_key(request: ModelRequest, workspace_id: UUID) -> str | None:
    """The cache key of a deterministic request (temperature 0: the same model, prompt and
    schema in the same workspace give the same answer); None for any other request."""
    if request.temperature != 0:
        return None
    canonical = json.dumps(
        {
            "workspace": str(workspace_id),
            "model": request.model,
            "tier": request.tier.value if request.tier else None,
            "task": request.task_type.value if request.task_type else None,
            "system": request.system,
            "messages": [[m.role, m.content] for m in request.messages],
            "max_tokens": request.max_tokens,
            "schema": request.json_schema,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
