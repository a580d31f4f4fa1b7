"""A local stand-in for Supabase Auth (a GoTrue subset), served under `/auth/v1`.

Production code and supabase-js talk to it exactly as to Supabase: sign-up with
auto-confirm, the password and refresh-token grants (refresh tokens rotate; reusing one
revokes its session), `GET /user`, `PUT /user` (updateUser), `POST /logout`, password
recovery (`/recover`), one-time passwords and magic links (`/otp`) verified by `/verify`,
and the JWKS. Access tokens are ES256 with Supabase's claims. Users live in the local
`auth.users` table. Mail (recovery links, one-time codes) goes to a mailbox in memory,
read at `GET /auth/v1/mailbox?email=` (development only). Every error, unknown routes
included, has GoTrue's JSON shape; CORS is served for the origins given.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from guildstack.devstack.gotrue_keys import SigningKey, api_key_for, check_password, hash_password

__all__ = ["SigningKey", "api_key_for", "create_auth_app"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}
MIN_PASSWORD_LENGTH = 8
OTP_TTL_SECONDS = 3600
# What supabase-js sends besides the standard headers.
_CORS_HEADERS = [
    "apikey",
    "authorization",
    "content-type",
    "x-client-info",
    "x-supabase-api-version",
]


@dataclass(frozen=True)
class OneTimeToken:
    """A pending recovery or sign-in: a 6-digit code for `verifyOtp` and a link's hash."""

    user_id: uuid.UUID
    email: str
    kind: str  # recovery | magiclink
    code: str
    token_hash: str
    expires_at: float


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    code: str
    link: str
    sent_at: str


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
        self.mailbox: list[Mail] = []
        self.pending: dict[str, OneTimeToken] = {}

    def send_token(self, user: dict[str, Any], kind: str, redirect_to: str | None) -> None:
        """A new one-time token for `user`, mailed as a code and a link to `/verify`."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        token_hash = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        expires_at = time.time() + OTP_TTL_SECONDS
        self.pending[token_hash] = OneTimeToken(
            user["id"], user["email"], kind, code, token_hash, expires_at
        )
        query = {"token": token_hash, "type": kind}
        if redirect_to:
            query["redirect_to"] = redirect_to
        link = f"{self.issuer}/verify?{urlencode(query)}"
        subject = "Reset your password" if kind == "recovery" else "Your sign-in link"
        self.mailbox.append(
            Mail(
                to=user["email"],
                subject=subject,
                text=f"{subject}: follow {link} or enter the code {code}.",
                code=code,
                link=link,
                sent_at=datetime.now(UTC).isoformat(),
            )
        )

    def take_token(
        self, kind: str, *, email: str = "", code: str = "", token_hash: str = ""
    ) -> OneTimeToken | None:
        """The pending token these credentials name (used up), if any and not expired."""
        now = time.time()
        kinds = {"email": {"magiclink", "recovery"}, "signup": {"magiclink"}}.get(kind, {kind})
        for key, pending in list(self.pending.items()):
            if pending.expires_at < now:
                del self.pending[key]
                continue
            named = (
                secrets.compare_digest(pending.token_hash, token_hash)
                if token_hash
                else pending.email == email and secrets.compare_digest(pending.code, code)
            )
            if named and pending.kind in kinds:
                del self.pending[key]
                return pending
        return None

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


_SESSION_USER = (
    "select u.* from auth.users u join auth.sessions s on s.user_id = u.id"
    " where u.id = %s and s.id = %s"
)
_SESSION_USER_FOR_UPDATE = _SESSION_USER + " for update of u"


async def _session_user(
    conn: AsyncConnection[DictRow], claims: dict[str, Any], *, lock: bool = False
) -> dict[str, Any] | None:
    """The token's user while its session lasts (locked for an update when asked)."""
    query = _SESSION_USER_FOR_UPDATE if lock else _SESSION_USER
    cur = await conn.execute(query, (claims["sub"], claims["session_id"]))
    return await cur.fetchone()


def _no_session() -> JSONResponse:
    return _error(403, "session_not_found", "Session from session_id claim in JWT does not exist")


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
    cors_origins: Sequence[str] = (),
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
            user = await _session_user(conn, claims)
        if user is None:
            return _no_session()
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

    async def update_user(request: Request) -> Response:
        """supabase-js `updateUser`: email (confirmed at once, as with auto-confirm),
        password, and `data` (merged into the user's metadata)."""
        claims = server.claims(request)
        if claims is None:
            return _error(401, "bad_jwt", "invalid JWT: unable to parse or verify signature")
        body = await _json(request)
        email, password, data = body.get("email"), body.get("password"), body.get("data")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email.strip())):
            return _error(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        if password is not None and (
            not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH
        ):
            return _error(
                422,
                "weak_password",
                f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                weak_password={"reasons": ["length"]},
            )
        if data is not None and not isinstance(data, dict):
            return _error(400, "validation_failed", "data must be an object")
        pool = await server.pool()
        async with pool.connection() as conn:
            user = await _session_user(conn, claims, lock=True)
            if user is None:
                return _no_session()
            if password is not None and await asyncio.to_thread(
                check_password, password, user["encrypted_password"]
            ):
                return _error(
                    422, "same_password", "New password should be different from the old password."
                )
            hashed = await asyncio.to_thread(hash_password, password) if password else None
            try:
                cur = await conn.execute(
                    """
                    update auth.users set
                        email = coalesce(%s, email),
                        encrypted_password = coalesce(%s, encrypted_password),
                        raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || %s,
                        updated_at = now()
                    where id = %s
                    returning *
                    """,
                    (
                        email.strip().lower() if email else None,
                        hashed,
                        Jsonb(data or {}),
                        user["id"],
                    ),
                )
            except UniqueViolation:
                return _error(
                    422,
                    "email_exists",
                    "A user with this email address has already been registered",
                )
            updated = await cur.fetchone()
        assert updated is not None  # noqa: S101 - the row was just locked
        return JSONResponse(_user_json(updated), headers=_API_VERSION)

    async def recover(request: Request) -> Response:
        """Mails a recovery code and link when the email has an account; the answer is the
        same either way (no account oracle)."""
        body = await _json(request)
        email = str(body.get("email") or "").strip().lower()
        if not _EMAIL.match(email):
            return _error(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        user = await _user_by_email(email)
        if user is not None:
            server.send_token(user, "recovery", request.query_params.get("redirect_to"))
        return JSONResponse({}, headers=_API_VERSION)

    async def otp(request: Request) -> Response:
        """Magic link / one-time code sign-in (`signInWithOtp`); creates the user unless
        `create_user` is false."""
        body = await _json(request)
        email = str(body.get("email") or "").strip().lower()
        if not _EMAIL.match(email):
            return _error(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        user = await _user_by_email(email)
        if user is None:
            if body.get("create_user") is False:
                return _error(422, "otp_disabled", "Signups not allowed for otp")
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            pool = await server.pool()
            async with pool.connection() as conn:
                cur = await conn.execute(
                    """
                    insert into auth.users (email, aud, role, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data)
                    values (%s, 'authenticated', 'authenticated', now(), %s, %s)
                    on conflict do nothing
                    returning *
                    """,
                    (email, Jsonb({"provider": "email", "providers": ["email"]}), Jsonb(data)),
                )
                user = await cur.fetchone()
            user = user or await _user_by_email(email)
            assert user is not None  # noqa: S101 - inserted or inserted by a concurrent call
        server.send_token(user, "magiclink", request.query_params.get("redirect_to"))
        return JSONResponse({}, headers=_API_VERSION)

    async def verify(request: Request) -> Response:
        """`verifyOtp`: a code with its email, or a link's `token_hash`; a session."""
        body = await _json(request)
        kind = str(body.get("type") or "")
        pending = server.take_token(
            kind,
            email=str(body.get("email") or "").strip().lower(),
            code=str(body.get("token") or ""),
            token_hash=str(body.get("token_hash") or ""),
        )
        if pending is None:
            return _error(403, "otp_expired", "Token has expired or is invalid")
        session = await _signed_in(pending.user_id)
        return JSONResponse(session, headers=_API_VERSION)

    async def verify_link(request: Request) -> Response:
        """A mailed link: signs in and redirects with the session in the URL fragment, as
        GoTrue's implicit flow does (supabase-js picks it up from there)."""
        params = request.query_params
        pending = server.take_token(
            str(params.get("type") or ""), token_hash=str(params.get("token") or "")
        )
        target = params.get("redirect_to") or "/"
        if pending is None:
            fragment = urlencode(
                {
                    "error": "access_denied",
                    "error_code": "otp_expired",
                    "error_description": "Email link is invalid or has expired",
                }
            )
            return RedirectResponse(f"{target}#{fragment}", status_code=303)
        session = await _signed_in(pending.user_id)
        fragment = urlencode(
            {
                "access_token": session["access_token"],
                "expires_at": session["expires_at"],
                "expires_in": session["expires_in"],
                "refresh_token": session["refresh_token"],
                "token_type": "bearer",
                "type": pending.kind,
            }
        )
        return RedirectResponse(f"{target}#{fragment}", status_code=303)

    async def mailbox(request: Request) -> Response:
        """Development only: the mail sent to `?email=` (all mail without it), newest last."""
        email = request.query_params.get("email", "").strip().lower()
        mails = [m for m in server.mailbox if not email or m.to == email]
        return JSONResponse(
            {
                "messages": [
                    {
                        "to": m.to,
                        "subject": m.subject,
                        "text": m.text,
                        "code": m.code,
                        "link": m.link,
                        "sent_at": m.sent_at,
                    }
                    for m in mails
                ]
            }
        )

    async def _user_by_email(email: str) -> dict[str, Any] | None:
        pool = await server.pool()
        async with pool.connection() as conn:
            cur = await conn.execute("select * from auth.users where email = %s", (email,))
            return await cur.fetchone()

    async def _signed_in(user_id: uuid.UUID) -> dict[str, Any]:
        pool = await server.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "update auth.users set last_sign_in_at = now() where id = %s returning *",
                (user_id,),
            )
            user = await cur.fetchone()
            assert user is not None  # noqa: S101 - the token names an existing user
            return await server.session_for(conn, user)

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
                # What Supabase's gateway answers, with GoTrue's fields beside its own.
                return _error(401, "no_authorization", "Invalid API key")
            if request.method == "POST" and _has_nul(await _json(request)):
                return _error(422, "validation_failed", "Input must not contain NUL characters")
            if _has_nul(dict(request.query_params)):
                return _error(422, "validation_failed", "Input must not contain NUL characters")
            response: Response = await handler(request)
            return response

        return Route(path, endpoint, methods=methods)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(
            status, codes.get(status, "unexpected_failure"), str(getattr(exc, "detail", ""))
        )

    return Starlette(
        routes=[
            route("/signup", signup, ["POST"]),
            route("/token", token, ["POST"]),
            route("/user", get_user, ["GET"]),
            route("/user", update_user, ["PUT"]),
            route("/logout", logout, ["POST"]),
            route("/recover", recover, ["POST"]),
            route("/otp", otp, ["POST"]),
            route("/verify", verify, ["POST"]),
            Route("/verify", verify_link, methods=["GET"]),
            Route("/mailbox", mailbox, methods=["GET"]),
            Route("/.well-known/jwks.json", jwks, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            route("/settings", settings, ["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
                allow_headers=_CORS_HEADERS,
                expose_headers=["X-Supabase-Api-Version"],
                max_age=600,
            )
        ],
        exception_handlers={HTTPException: http_error},
    )
