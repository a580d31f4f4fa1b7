"""Supabase Auth through supabase-py's auth client (`supabase_auth`), imported on first use."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

from guildstack.domain.errors import (
    Conflict,
    DependencyUnavailable,
    GuildstackError,
    InvalidInput,
    RateLimited,
    Unauthorized,
)
from guildstack.domain.identity import AuthUser, Session, SignedIn

if TYPE_CHECKING:
    from supabase_auth import AsyncGoTrueClient

_CONFLICT_CODES = frozenset({"user_already_exists", "email_exists", "conflict"})
_INPUT_CODES = frozenset(
    {"weak_password", "validation_failed", "bad_json", "email_address_invalid"}
)
_UNAUTHORIZED_CODES = frozenset(
    {
        "invalid_credentials",
        "refresh_token_not_found",
        "refresh_token_already_used",
        "session_not_found",
        "session_expired",
        "bad_jwt",
        "user_not_found",
        "user_banned",
        "email_not_confirmed",
    }
)


class SupabaseIdentity:
    """Sign-up, sign-in, refresh and sign-out against a Supabase Auth (GoTrue) server."""

    def __init__(self, supabase_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self._url = supabase_url.rstrip("/") + "/auth/v1"
        self._api_key = api_key
        self._timeout = timeout
        self._client: AsyncGoTrueClient | None = None
        self._lock = asyncio.Lock()

    def forget_connections(self) -> None:
        """Drop the auth client and its connections (made again on first use)."""
        self._client = None
        self._lock = asyncio.Lock()

    async def _auth(self) -> AsyncGoTrueClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from supabase_auth import AsyncGoTrueClient

                    # Stateless use: sessions are returned to the caller, never kept here.
                    self._client = AsyncGoTrueClient(
                        url=self._url,
                        headers={"apikey": self._api_key},
                        auto_refresh_token=False,
                        persist_session=False,
                    )
        return self._client

    async def sign_up(self, email: str, password: str, full_name: str | None) -> SignedIn:
        client = await self._auth()
        data: dict[str, Any] = {"full_name": full_name} if full_name else {}
        response = await _call(
            client.sign_up({"email": email, "password": password, "options": {"data": data}})
        )
        return _signed_in(response)

    async def sign_in(self, email: str, password: str) -> SignedIn:
        client = await self._auth()
        response = await _call(client.sign_in_with_password({"email": email, "password": password}))
        return _signed_in(response)

    async def refresh(self, refresh_token: str) -> Session:
        client = await self._auth()
        response = await _call(client.refresh_session(refresh_token))
        session = _session(response.session)
        if session is None:
            raise Unauthorized("The refresh token is not valid.")
        return session

    async def sign_out(self, access_token: str) -> None:
        client = await self._auth()
        await _call(client.admin.sign_out(access_token, "local"))


async def _call(awaitable: Any) -> Any:
    from supabase_auth.errors import (
        AuthApiError,
        AuthError,
        AuthRetryableError,
        AuthWeakPasswordError,
    )

    try:
        return await awaitable
    except AuthWeakPasswordError as exc:
        raise InvalidInput("The password is too weak.") from exc
    except AuthRetryableError as exc:
        raise DependencyUnavailable("The identity provider is unavailable.") from exc
    except AuthApiError as exc:
        raise _translate(exc.code, exc.status) from exc
    except AuthError as exc:
        raise Unauthorized("The identity provider refused the request.") from exc


def _translate(code: str | None, status: int) -> GuildstackError:
    if code in _CONFLICT_CODES:
        return Conflict("An account with this email already exists.")
    if code in _INPUT_CODES:
        return InvalidInput("The identity provider rejected the input.")
    if code in _UNAUTHORIZED_CODES or status in (401, 403):
        return Unauthorized("The credentials or token are not valid.")
    if status == 429:
        return RateLimited("The identity provider is rate limiting.", retry_after_seconds=60)
    if status >= 500 or status == 0:
        return DependencyUnavailable("The identity provider is unavailable.")
    return InvalidInput("The identity provider rejected the request.")


def _signed_in(response: Any) -> SignedIn:
    user = response.user
    if user is None:
        raise DependencyUnavailable("The identity provider returned no user.")
    return SignedIn(
        user=AuthUser(id=UUID(str(user.id)), email=user.email),
        session=_session(response.session),
    )


def _session(session: Any) -> Session | None:
    if session is None:
        return None
    return Session(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=int(session.expires_in),
        token_type=session.token_type or "bearer",
    )
