"""`PostgresDatabase`: a psycopg 3 async pool whose transactions run under the caller's RLS.

A transaction begins with one statement that does what PostgREST does on Supabase: it puts
the JWT claims in `request.jwt.claims` and switches to the `authenticated` role (or
`service_role`, for system work said out loud), so row-level security decides what the
caller may see and change. The same statement reads the transaction's clock.

A pipelined transaction (libpq's pipeline mode) sends its statements without waiting for
each one's result: the database still runs them one after another, in order, but the
client waits only when it reads a result and once at commit. Its `begin` travels with its
first read, and a statement whose result nobody reads (a write) costs no round trip of its
own. The price: an error surfaces at the next read or at commit rather than at the
statement that caused it, and a cursor's `rowcount` is known only after the next read.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from guildstack.domain.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    InvalidInput,
    Overloaded,
)
from guildstack.observability import logger

Connection = psycopg.AsyncConnection[DictRow]

# SQLSTATE our migrations raise for "this would break an invariant" (e.g. the last owner).
CONFLICT_SQLSTATE = "P0409"
SERVICE_CLAIMS = json.dumps({"role": "service_role"})
_IDLE = psycopg.pq.TransactionStatus.IDLE
# One round trip opens a transaction and sets who it acts for: the claims travel as quoted
# literals (a multi-statement query cannot take parameters).
_BEGIN = sql.SQL(
    "begin; select set_config('request.jwt.claims', {claims}, true),"
    " set_config('request.jwt.claim.sub', {sub}, true),"
    " set_config('role', {role}, true), now() as now"
)
# The same, as parameters, for a pipelined transaction (which cannot send two statements in
# one query): its `begin` is a statement of its own, sent without waiting, and its clock is
# read (as microseconds since the epoch) along with the transaction's first result.
_SETUP = (
    "select set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s,"
    " true), set_config('role', %s, true), (extract(epoch from now()) * 1000000)::int8 as now"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A connection used this recently is alive: checking it again would cost a round trip on
# every transaction. One idle longer (a frozen Lambda, a restarted server) is checked.
RECENTLY_USED_SECONDS = 30.0


class PostgresDatabase:
    """A lazily opened connection pool (nothing connects at import or construction)."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 0,
        max_size: int = 5,
        connect_timeout: float = 5.0,
        pool_timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._lock = asyncio.Lock()
        self._returned: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()

    @property
    def opened(self) -> bool:
        return self._pool is not None

    def forget_connections(self) -> None:
        """Drop the pool without closing it (after a SnapStart restore its connections'
        sockets are not the ones the snapshot saw); the next transaction opens a new one."""
        self._pool = None
        self._lock = asyncio.Lock()
        self._returned = weakref.WeakKeyDictionary()

    async def _open(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                        self._dsn,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        timeout=self._pool_timeout,
                        open=False,
                        # Supabase's transaction pooler cannot keep prepared statements.
                        # Transactions are opened and closed by `begin` itself (autocommit
                        # connections), which saves psycopg's separate BEGIN round trip.
                        kwargs={
                            "prepare_threshold": None,
                            "row_factory": dict_row,
                            "connect_timeout": max(1, int(self._connect_timeout)),
                            "autocommit": True,
                        },
                        check=self._check,
                        reset=self._reset,
                    )
                    await pool.open(wait=False)
                    self._pool = pool
        return self._pool

    @asynccontextmanager
    async def begin(
        self, claims: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[Connection, datetime]]:
        """A transaction as the user in `claims` (RLS applies), or as `service_role` when
        `claims` is None; with the transaction's time."""
        setup = _setup(claims)
        begin = _BEGIN.format(
            claims=sql.Literal(setup[0]), sub=sql.Literal(setup[1]), role=sql.Literal(setup[2])
        )
        async with self._connection() as conn:
            cur = await conn.execute(begin)
            cur.nextset()  # past BEGIN's result, to the setup's row
            row = await returned_row(cur)
            yield conn, row["now"]

    @asynccontextmanager
    async def pipelined(
        self, claims: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[Connection, TxClock]]:
        """`begin`, in pipeline mode (see the module's docstring). The transaction's time is
        known once it has read its first result: `clock()` raises before that."""
        pool = await self._open()
        try:
            async with pool.connection() as conn:
                try:
                    async with conn.pipeline():
                        await conn.execute("begin")
                        clock = TxClock(await conn.execute(_SETUP, _setup(claims)))
                        yield conn, clock
                        await conn.execute("commit")
                except BaseException:
                    # Leaving the pipeline synced it: what is left is a transaction to end.
                    if not conn.broken and conn.info.transaction_status != _IDLE:
                        await conn.execute("rollback")
                    raise
        except PoolTimeout as exc:
            raise Overloaded("Every database connection is busy; try again in a moment.") from exc
        except psycopg.Error as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def transaction(self, claims: Mapping[str, Any]) -> AsyncIterator[Connection]:
        """A transaction as the user in `claims`: RLS applies to everything inside."""
        async with self.begin(claims) as (conn, _):
            yield conn

    @asynccontextmanager
    async def service_transaction(self, reason: str) -> AsyncIterator[Connection]:
        """A transaction as `service_role` (bypasses RLS). `reason` says why, for the log."""
        logger.debug("service-role transaction", extra={"reason": reason})
        async with self.begin(None) as (conn, _):
            yield conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction `begin` opens: committed when the block
        ends, rolled back when it raises (and the pool rolls back anything left open)."""
        pool = await self._open()
        try:
            async with pool.connection() as conn:
                try:
                    yield conn
                except BaseException:
                    if not conn.broken:
                        await conn.execute("rollback")
                    raise
                await conn.execute("commit")
        except PoolTimeout as exc:
            # Every connection is busy (or none could be opened in time): a busy service,
            # not a database outage; the client may try again at once.
            raise Overloaded("Every database connection is busy; try again in a moment.") from exc
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def _check(self, conn: Connection) -> None:
        if time.monotonic() - self._returned.get(conn, 0.0) > RECENTLY_USED_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

    async def _reset(self, conn: Connection) -> None:
        self._returned[conn] = time.monotonic()

    async def ping(self) -> bool:
        """True when a trivial query answers within the connect timeout."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                pool = await self._open()
                async with pool.connection(timeout=self._connect_timeout) as conn:
                    await conn.execute("select 1")
            return True
        except (TimeoutError, PoolTimeout, psycopg.Error):
            return False

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class TxClock:
    """A pipelined transaction's time, read from its setup statement's result once that has
    arrived (with the transaction's first read)."""

    def __init__(self, cursor: psycopg.AsyncCursor[DictRow]) -> None:
        self._cursor = cursor
        self._value: datetime | None = None

    def __call__(self) -> datetime:
        if self._value is None:
            result = self._cursor.pgresult
            raw = result.get_value(0, 3) if result is not None and result.ntuples else None
            if raw is None:
                raise RuntimeError("a pipelined transaction's time is known after its first read")
            self._value = _EPOCH + timedelta(microseconds=int(raw))
        return self._value


def _setup(claims: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """The claims (JSON), subject and role a transaction acts with."""
    if claims is None:
        return (SERVICE_CLAIMS, "", "service_role")
    role = "anon" if claims.get("role") == "anon" else "authenticated"
    return (json.dumps(dict(claims), default=str), str(claims.get("sub") or ""), role)


async def returned_row(cur: psycopg.AsyncCursor[DictRow]) -> DictRow:
    """The row a statement always returns (insert … returning, an aggregate, a locked row)."""
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def translate(exc: psycopg.Error) -> Exception:
    """A psycopg error as the domain error it means (by SQLSTATE, never by message)."""
    sqlstate = exc.sqlstate or ""
    detail = exc.diag.message_primary or "database error"
    if sqlstate == CONFLICT_SQLSTATE:
        return Conflict(detail[0].upper() + detail[1:] + ".")
    if isinstance(exc, pg_errors.UniqueViolation):
        return Conflict("That already exists.")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return Forbidden("Not allowed.")
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return InvalidInput("A referenced record does not exist.")
    if isinstance(exc, pg_errors.CheckViolation | pg_errors.DataError):
        return InvalidInput("A value is out of range or malformed.")
    if isinstance(exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure):
        return Overloaded("The database aborted a conflicting change; try again.")
    if isinstance(exc, psycopg.OperationalError):
        return DependencyUnavailable("The database is not reachable.")
    return exc
