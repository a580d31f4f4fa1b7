"""Health probe for PostgreSQL."""

from __future__ import annotations

from guildstack.adapters.postgres.database import PostgresDatabase


class PostgresProbe:
    name = "postgres"
    critical = True

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def check(self) -> bool:
        return await self._db.ping()
