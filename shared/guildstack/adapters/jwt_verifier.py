"""Verify Supabase access tokens with PyJWT: JWKS (ES256/RS256) or the legacy HS256 secret."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, TypeGuard
from uuid import UUID

import httpx
import jwt
from jwt import PyJWK

from guildstack.domain.errors import Unauthorized
from guildstack.domain.identity import Principal

ASYMMETRIC = ("ES256", "RS256")
# Refetching the JWKS for every unknown `kid` would let anyone make us hammer the issuer.
_MIN_REFETCH_SECONDS = 30.0
_KEYS_TTL_SECONDS = 600.0


class JwksCache:
    """The issuer's signing keys by `kid`, refreshed on expiry or (rate-limited) on a miss."""

    def __init__(
        self, url: str, *, timeout: float = 3.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._transport = transport
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> PyJWK | None:
        now = time.monotonic()
        stale = now - self._fetched_at > _KEYS_TTL_SECONDS
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys or stale:
                if stale or time.monotonic() - self._fetched_at > _MIN_REFETCH_SECONDS:
                    await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            response = await client.get(self._url)
            response.raise_for_status()
            document = response.json()
        keys: dict[str, PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or "kid" not in entry:
                continue
            try:
                keys[str(entry["kid"])] = PyJWK(entry)
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()


# One cache per issuer for the life of the container (survives across invocations).
_JWKS_CACHES: dict[str, JwksCache] = {}


def jwks_cache_for(url: str) -> JwksCache:
    cache = _JWKS_CACHES.get(url)
    if cache is None:
        cache = _JWKS_CACHES[url] = JwksCache(url)
    return cache


# Supabase issues access tokens for an hour by default (a week at most).
DEFAULT_MAX_LIFETIME_SECONDS = 86_400


class JwtVerifier:
    """Checks signature, algorithm, audience, issuer, expiry (a number, and no further away
    than the longest lifetime allowed) and subject; nothing less."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache | None,
        hs256_secret: str | None,
        leeway_seconds: int,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks
        self._secret = hs256_secret
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        algorithm = header.get("alg")
        key = await self._key_for(algorithm, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud", "iss"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is not valid.") from exc
        self._check_lifetime(claims)
        return _principal(claims)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """PyJWT reads `int(exp)`, so `"9999999999"` passes, and it sets no upper bound: a
        token signed (or leaked) with an `exp` millennia away would work for ever."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _numeric_date(exp) or (iat is not None and not _numeric_date(iat)):
            raise Unauthorized("The access token's times are not numbers.")
        lifetime = exp - (iat if iat is not None else time.time())
        if lifetime > self._max_lifetime + self._leeway:
            raise Unauthorized("The access token lives longer than allowed.")

    async def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm in ASYMMETRIC and self._jwks is not None:
            if not isinstance(kid, str) or not kid:
                raise Unauthorized("The access token names no signing key.")
            try:
                jwk = await self._jwks.key(kid)
            except (httpx.HTTPError, ValueError) as exc:
                raise Unauthorized("The signing keys could not be fetched.") from exc
            # The key's own algorithm must be the token's: no confusion between key types.
            if jwk is None or jwk.algorithm_name != algorithm:
                raise Unauthorized("The access token's signing key is unknown.")
            return jwk.key
        if algorithm == "HS256" and self._secret:
            return self._secret
        raise Unauthorized("The access token's algorithm is not accepted.")


def _numeric_date(value: object) -> TypeGuard[int | float]:
    """A JSON number of seconds (fractions allowed, as RFC 7519 says); not a string, not a
    boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _principal(claims: dict[str, Any]) -> Principal:
    if claims.get("role") != "authenticated":
        raise Unauthorized("The token does not belong to a signed-in user.")
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthorized("The token's subject is not a user id.") from exc
    email = claims.get("email")
    session_id = claims.get("session_id")
    return Principal(
        user_id=user_id,
        email=email if isinstance(email, str) and email else None,
        claims=claims,
        session_id=session_id if isinstance(session_id, str) else None,
    )
