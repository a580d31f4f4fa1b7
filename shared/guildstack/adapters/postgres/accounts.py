"""`PostgresAccountDirectory`: whether a token's account (and session) still exists, asked
of Supabase's `auth` schema through a definer function only the service role may call."""

from __future__ import annotations

from uuid import UUID

from guildstack.adapters.postgres.database import PostgresDatabase, returned_row


class PostgresAccountDirectory:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def active(self, user_id: UUID, session_id: UUID | None) -> bool:
        async with self._database.service_transaction("check a token's account") as conn:
            cur = await conn.execute(
                "select private.account_active(%s, %s) as active", (user_id, session_id)
            )
            return bool((await returned_row(cur))["active"])
