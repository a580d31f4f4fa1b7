"""The authenticated caller, apart from the rest of `identity` so that the HTTP layer's
auth dependency loads only this at cold start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Principal:
    """An authenticated user, as proven by a verified access token."""

    user_id: UUID
    email: str | None
    claims: dict[str, Any] = field(repr=False)
    session_id: str | None = None
