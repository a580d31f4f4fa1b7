"""Dependency probes for /health."""

from __future__ import annotations

from typing import Protocol


class Probe(Protocol):
    name: str
    critical: bool

    async def check(self) -> bool:
        """True when the dependency answers; never raises."""
        ...
