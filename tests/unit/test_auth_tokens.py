"""The JWT matrix: every malformed, forged or misdirected token is a 401 problem+json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from functions.auth.app import create
from guildstack.adapters.jwt_verifier import JwksCache, JwtVerifier
from guildstack.bootstrap import build
from guildstack.config import Settings
from tests.fakes.identity import FakeIdentity
from tests.fakes.uow import InMemoryUnitOfWork

ISSUER = "http://auth.test/auth/v1"
KID = "test-key-1"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Keys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.other = ec.generate_private_key(ec.SECP256R1())
        public_jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwks = {"keys": [{**public_jwk, "kid": KID, "alg": "ES256", "use": "sig"}]}
        self.fetches = 0

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": ISSUER,
            "aud": "authenticated",
            "sub": str(uuid.uuid4()),
            "role": "authenticated",
            "email": "someone@example.com",
            "iat": now,
            "exp": now + 600,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str = KID) -> str:
        return jwt.encode(claims, key or self.private, algorithm="ES256", headers={"kid": kid})

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            self.fetches += 1
            return httpx.Response(200, json=self.jwks)

        return httpx.MockTransport(handler)


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
async def client(keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    verifier = JwtVerifier(
        issuer=ISSUER,
        audience="authenticated",
        jwks=JwksCache(f"{ISSUER}/.well-known/jwks.json", transport=keys.transport()),
        hs256_secret=None,
        leeway_seconds=5,
    )
    container = build(
        Settings(stage="test"),
        identity=FakeIdentity(),
        token_verifier=verifier,
        uow=InMemoryUnitOfWork(),
        user_rate_limiter=None,
        public_rate_limiter=None,
    )
    app = create(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def hs256_with_public_key(keys: Keys) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the public key's PEM."""
    pem = keys.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    payload = b64(json.dumps(keys.claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def unsigned(keys: Keys) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(keys.claims()).encode())}."


FORGERIES: dict[str, Callable[[Keys], str]] = {
    "expired": lambda k: k.sign(k.claims(exp=int(time.time()) - 120)),
    "not yet valid": lambda k: k.sign(k.claims(nbf=int(time.time()) + 600)),
    "wrong audience": lambda k: k.sign(k.claims(aud="someone-else")),
    "wrong issuer": lambda k: k.sign(k.claims(iss="http://evil.test/auth/v1")),
    "bad signature": lambda k: k.sign(k.claims(), key=k.other),
    "alg none": unsigned,
    "hs256 signed with the public key": hs256_with_public_key,
    "unknown kid": lambda k: k.sign(k.claims(), kid="no-such-key"),
    "missing sub": lambda k: k.sign(k.claims(sub=None)),
    "missing exp": lambda k: k.sign(k.claims(exp=None)),
    "sub not a uuid": lambda k: k.sign(k.claims(sub="admin")),
    "anon role": lambda k: k.sign(k.claims(role="anon")),
    "malformed header": lambda k: "%%%." + k.sign(k.claims()).split(".", 1)[1],
    "garbage": lambda k: "this is not a token",
    # Lifetimes and times that are not numbers (PyJWT alone reads `int(exp)`).
    "exp in the year 33658": lambda k: k.sign(k.claims(exp=10**12)),
    "lifetime over the maximum": lambda k: k.sign(k.claims(exp=int(time.time()) + 86_400 * 30)),
    "issued long ago for long": lambda k: k.sign(
        k.claims(iat=int(time.time()) - 86_400 * 29, exp=int(time.time()) + 600)
    ),
    "exp a numeric string": lambda k: k.sign(k.claims(exp=str(int(time.time()) + 600))),
    "exp a float string": lambda k: k.sign(k.claims(exp=f"{time.time() + 600}")),
    "exp a list": lambda k: k.sign(k.claims(exp=[int(time.time()) + 600])),
    "iat a string": lambda k: k.sign(k.claims(iat=str(int(time.time())))),
}


async def test_given_a_valid_token_when_calling_me_then_it_is_accepted(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(
        "/auth/me", headers={"Authorization": f"Bearer {keys.sign(keys.claims())}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", sorted(FORGERIES))
async def test_given_a_bad_token_when_calling_me_then_401_problem(
    client: httpx.AsyncClient, keys: Keys, case: str
) -> None:
    token = FORGERIES[case](keys)
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (case, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("header", ["", "Basic abc", "Bearer", "Bearer    "])
async def test_given_no_bearer_token_when_calling_me_then_401(
    client: httpx.AsyncClient, header: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.get("/auth/me", headers=headers)
    assert response.status_code == 401


async def test_given_many_unknown_kids_when_verifying_then_jwks_is_not_refetched_each_time(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    for n in range(5):
        token = keys.sign(keys.claims(), kid=f"unknown-{n}")
        response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    assert keys.fetches == 1


async def test_given_a_fractional_exp_within_the_lifetime_then_it_is_accepted(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    """NumericDate may carry fractions (RFC 7519)."""
    token = keys.sign(keys.claims(exp=time.time() + 600.5))
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
