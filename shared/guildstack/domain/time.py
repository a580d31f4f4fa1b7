"""Timestamps on the wire: RFC 3339 in UTC with `Z`, the form pydantic gives responses."""

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """`2026-12-02T15:04:05.123456Z` (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
