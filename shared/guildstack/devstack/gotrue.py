"""A local stand-in for Supabase Auth (a GoTrue subset), served under `/auth/v1`.

Production code talks to it through `supabase_auth` exactly as to Supabase: sign-up with
auto-confirm, the password and refresh-token grants (refresh tokens rotate; reusing one
revokes its session), `GET /user`, `POST /logout`, and the JWKS. Access tokens are ES256
with Supabase's claims. Users live in the local `auth.users` table.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from datetime import datetime
from typing import Any

import jwt
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guildstack.devstack.gotrue_keys import SigningKey, api_key_for, check_password, hash_password

__all__ = ["SigningKey", "api_key_for", "create_auth_app"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}
MIN_PASSWORD_LENGTH = 8


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """GoTrue's error shape for API version 2024-01-01 (what supabase_auth parses)."""
    body = {"code": code, "error_code": code, "msg": message, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=_API_VERSION)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _user_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "aud": row["aud"] or "authenticated",
        "role": row["role"] or "authenticated",
        "email": row["email"],
        "phone": row["phone"] or "",
        "email_confirmed_at": _iso(row["email_confirmed_at"]),
        "confirmed_at": _iso(row["email_confirmed_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"] or {},
        "user_metadata": row["raw_user_meta_data"] or {},
        "identities": [],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": bool(row["is_anonymous"]),
    }


class AuthServer:
    def __init__(
        self,
        database_url: str,
        *,
        issuer: str,
        signing_key: SigningKey,
        api_keys: frozenset[str],
        access_token_ttl: int,
    ) -> None:
        self.issuer = issuer
        self.key = signing_key
        self.api_keys = api_keys
        self.ttl = access_token_ttl
        self._dsn = database_url
        self._pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
                        self._dsn,
                        min_size=0,
                        max_size=4,
                        open=False,
                        kwargs={"row_factory": dict_row, "autocommit": False},
                    )
                    await pool.open()
                    self._pool = pool
        return self._pool

    async def session_for(
        self, conn: AsyncConnection[DictRow], user: dict[str, Any]
    ) -> dict[str, Any]:
        """A new session with its first refresh token, as GoTrue returns it."""
        session_id = uuid.uuid4()
        await conn.execute(
            "insert into auth.sessions (id, user_id) values (%s, %s)", (session_id, user["id"])
        )
        return await self._tokens(conn, user, session_id, parent=None)

    async def _tokens(
        self,
        conn: AsyncConnection[DictRow],
        user: dict[str, Any],
        session_id: uuid.UUID,
        parent: str | None,
    ) -> dict[str, Any]:
        refresh_token = secrets.token_urlsafe(24)
        await conn.execute(
            "insert into auth.refresh_tokens (token, user_id, session_id, parent)"
            " values (%s, %s, %s, %s)",
            (refresh_token, str(user["id"]), session_id, parent),
        )
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": "authenticated",
            "sub": str(user["id"]),
            "exp": now + self.ttl,
            "iat": now,
            "email": user["email"],
            "phone": user["phone"] or "",
            "app_metadata": user["raw_app_meta_data"] or {},
            "user_metadata": user["raw_user_meta_data"] or {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(session_id),
            "is_anonymous": bool(user["is_anonymous"]),
        }
        return {
            "access_token": self.key.sign(claims),
            "token_type": "bearer",
            "expires_in": self.ttl,
            "expires_at": now + self.ttl,
            "refresh_token": refresh_token,
            "user": _user_json(user),
        }

    def claims(self, request: Request) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            return self.key.verify(token.strip(), issuer=self.issuer)
        except jwt.PyJWTError:
            return None


def _has_nul(value: object) -> bool:
    """Whether a NUL character hides anywhere in a parsed JSON value (Postgres text and jsonb
    cannot store one; GoTrue refuses such input as invalid)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def create_auth_app(
    database_url: str,
    *,
    issuer: str,
    signing_key: SigningKey,
    anon_key: str,
    service_role_key: str,
    access_token_ttl: int = 3600,
) -> Starlette:
    """The auth stand-in; mount it at `/auth/v1` so `issuer` is `<base>/auth/v1`."""
    server = AuthServer(
        database_url,
        issuer=issuer,
        signing_key=signing_key,
        api_keys=frozenset({anon_key, service_role_key}),
        access_token_ttl=access_token_ttl,
    )

    def api_key_ok(request: Request) -> bool:
        given = request.headers.get("apikey", "")
        return any(secrets.compare_digest(given, key) for key in server.api_keys)

    async def signup(request: Request) -> Response:
        body = await _json(request)
        email = str(body.get("email") or "").strip().lower()
        password = body.get("password")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if not _EMAIL.match(email):
            return _error(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
            return _error(
                422,
                "weak_password",
                f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                weak_password={"reasons": ["length"]},
            )
        hashed = await asyncio.to_thread(hash_password, password)
        pool = await server.pool()
        async with pool.connection() as conn:
            try:
                cur = await conn.execute(
                    """
                    insert into auth.users (email, encrypted_password, aud, role,
                        email_confirmed_at, raw_app_meta_data, raw_user_meta_data, last_sign_in_at)
                    values (%s, %s, 'authenticated', 'authenticated', now(), %s, %s, now())
                    returning *
                    """,
                    (
                        email,
                        hashed,
                        Jsonb({"provider": "email", "providers": ["email"]}),
                        Jsonb(data),
                    ),
                )
            except UniqueViolation:
                return _error(422, "user_already_exists", "User already registered")
            user = await cur.fetchone()
            assert user is not None  # noqa: S101 - RETURNING always yields the row
            session = await server.session_for(conn, user)
        return JSONResponse(session, headers=_API_VERSION)

    async def token(request: Request) -> Response:
        grant = request.query_params.get("grant_type")
        body = await _json(request)
        if grant == "password":
            return await password_grant(body)
        if grant == "refresh_token":
            return await refresh_grant(body)
        return _error(400, "validation_failed", f"unsupported grant_type: {grant}")

    async def password_grant(body: dict[str, Any]) -> Response:
        email = str(body.get("email") or "").strip().lower()
        password = str(body.get("password") or "")
        pool = await server.pool()
        async with pool.connection() as conn:
            cur = await conn.execute("select * from auth.users where email = %s", (email,))
            user = await cur.fetchone()
            stored = user["encrypted_password"] if user else None
            if not await asyncio.to_thread(check_password, password, stored) or user is None:
                return _error(400, "invalid_credentials", "Invalid login credentials")
            await conn.execute(
                "update auth.users set last_sign_in_at = now() where id = %s", (user["id"],)
            )
            session = await server.session_for(conn, user)
        return JSONResponse(session, headers=_API_VERSION)

    async def refresh_grant(body: dict[str, Any]) -> Response:
        presented = str(body.get("refresh_token") or "")
        pool = await server.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select * from auth.refresh_tokens where token = %s for update", (presented,)
            )
            row = await cur.fetchone()
            if row is None or row["session_id"] is None:
                return _error(
                    400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
                )
            if row["revoked"]:
                # Reuse of a rotated token: treat the session as stolen and end it.
                await conn.execute("delete from auth.sessions where id = %s", (row["session_id"],))
                await conn.commit()
                return _error(
                    400, "refresh_token_already_used", "Invalid Refresh Token: Already Used"
                )
            await conn.execute(
                "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s",
                (row["id"],),
            )
            cur = await conn.execute("select * from auth.users where id = %s", (row["user_id"],))
            user = await cur.fetchone()
            if user is None:
                return _error(400, "user_not_found", "User not found")
            session = await server._tokens(conn, user, row["session_id"], parent=presented)
        return JSONResponse(session, headers=_API_VERSION)

    async def get_user(request: Request) -> Response:
        claims = server.claims(request)
        if claims is None:
            return _error(401, "bad_jwt", "invalid JWT: unable to parse or verify signature")
        pool = await server.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select u.* from auth.users u join auth.sessions s on s.user_id = u.id"
                " where u.id = %s and s.id = %s",
                (claims["sub"], claims["session_id"]),
            )
            user = await cur.fetchone()
        if user is None:
            return _error(
                403, "session_not_found", "Session from session_id claim in JWT does not exist"
            )
        return JSONResponse(_user_json(user), headers=_API_VERSION)

    async def logout(request: Request) -> Response:
        claims = server.claims(request)
        if claims is None:
            return _error(401, "bad_jwt", "invalid JWT: unable to parse or verify signature")
        scope = request.query_params.get("scope", "global")
        queries = {
            "local": ("delete from auth.sessions where id = %s", (claims["session_id"],)),
            "others": (
                "delete from auth.sessions where user_id = %s and id <> %s",
                (claims["sub"], claims["session_id"]),
            ),
            "global": ("delete from auth.sessions where user_id = %s", (claims["sub"],)),
        }
        if scope not in queries:
            return _error(400, "validation_failed", f"unsupported scope: {scope}")
        query, params = queries[scope]
        pool = await server.pool()
        async with pool.connection() as conn:
            await conn.execute(query, params)
        return Response(status_code=204, headers=_API_VERSION)

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [server.key.public_jwk()]})

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"version": "guildstack-devstack", "name": "GoTrue", "description": "local stand-in"}
        )

    async def settings(request: Request) -> Response:
        return JSONResponse(
            {"external": {"email": True}, "disable_signup": False, "mailer_autoconfirm": True}
        )

    def route(path: str, handler: Any, methods: list[str]) -> Route:
        """A route behind the API-key check Supabase's gateway applies."""

        async def endpoint(request: Request) -> Response:
            if not api_key_ok(request):
                return JSONResponse({"message": "Invalid API key"}, status_code=401)
            if request.method == "POST" and _has_nul(await _json(request)):
                return _error(422, "validation_failed", "Input must not contain NUL characters")
            if _has_nul(dict(request.query_params)):
                return _error(422, "validation_failed", "Input must not contain NUL characters")
            response: Response = await handler(request)
            return response

        return Route(path, endpoint, methods=methods)

    return Starlette(
        routes=[
            route("/signup", signup, ["POST"]),
            route("/token", token, ["POST"]),
            route("/user", get_user, ["GET"]),
            route("/logout", logout, ["POST"]),
            Route("/.well-known/jwks.json", jwks, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            route("/settings", settings, ["GET"]),
        ]
    )
