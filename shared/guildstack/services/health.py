"""Health: every dependency probed concurrently; only a critical failure is fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from guildstack.ports.health import Probe


@dataclass(frozen=True)
class HealthReport:
    status: str  # "ok" | "degraded"
    checks: dict[str, str]  # name -> "ok" | "down" | "not_configured"
    serving: bool  # False when a critical dependency (Postgres) is down


class MissingProbe:
    """A dependency that is not configured at all: always down."""

    def __init__(self, name: str, *, critical: bool) -> None:
        self.name = name
        self.critical = critical

    async def check(self) -> bool:
        return False


class HealthService:
    def __init__(self, probes: Sequence[Probe], not_configured: Sequence[str] = ()) -> None:
        self._probes = list(probes)
        self._not_configured = list(not_configured)

    async def report(self, timeout_seconds: float = 2.0) -> HealthReport:
        """Probe everything at once, each bounded by the timeout."""
        results = await asyncio.gather(*(self._bounded(p, timeout_seconds) for p in self._probes))
        checks = {
            p.name: "ok" if ok else "down" for p, ok in zip(self._probes, results, strict=True)
        }
        checks.update({name: "not_configured" for name in self._not_configured})
        critical_down = any(
            not ok and p.critical for p, ok in zip(self._probes, results, strict=True)
        )
        status = "ok" if all(results) else "degraded"
        return HealthReport(status=status, checks=checks, serving=not critical_down)

    @staticmethod
    async def _bounded(probe: Probe, timeout_seconds: float) -> bool:
        try:
            return await asyncio.wait_for(probe.check(), timeout_seconds)
        except TimeoutError:
            return False
