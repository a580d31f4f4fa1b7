"""supabase-py's auth client, unchanged, against the devstack's Supabase Auth stand-in."""

from __future__ import annotations

import uuid

import httpx
import jwt
import psycopg
import pytest
from supabase_auth import AsyncGoTrueClient, SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from tests.fixtures.auth import AuthEndpoint


def client(auth: AuthEndpoint) -> AsyncGoTrueClient:
    return AsyncGoTrueClient(
        url=f"{auth.url}/auth/v1",
        headers={"apikey": auth.anon_key},
        auto_refresh_token=False,
        persist_session=False,
    )


def email() -> str:
    return f"conf-{uuid.uuid4().hex[:10]}@example.com"


async def test_given_a_new_email_when_signing_up_then_a_session_and_user_come_back(
    auth_server: AuthEndpoint, database_url: str
) -> None:
    address = email()
    response = await client(auth_server).sign_up(
        {"email": address, "password": "long-enough-1", "options": {"data": {"full_name": "Ada L"}}}
    )
    assert response.user is not None and response.user.email == address
    assert response.session is not None and response.session.token_type == "bearer"
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select full_name, email from public.profiles where id = %s", (response.user.id,)
        ).fetchone()
    assert row == ("Ada L", address)


async def test_given_an_account_when_signing_in_then_the_token_has_supabase_claims(
    auth_server: AuthEndpoint,
) -> None:
    address = email()
    auth = client(auth_server)
    await auth.sign_up({"email": address, "password": "long-enough-1"})
    response = await auth.sign_in_with_password({"email": address, "password": "long-enough-1"})
    assert response.session is not None
    jwks = jwt.PyJWKClient(f"{auth_server.issuer}/.well-known/jwks.json")
    token = response.session.access_token
    claims = jwt.decode(
        token,
        jwks.get_signing_key_from_jwt(token).key,
        algorithms=["ES256"],
        audience="authenticated",
        issuer=auth_server.issuer,
    )
    assert response.user is not None and claims["sub"] == response.user.id
    assert claims["role"] == "authenticated" and claims["aal"] == "aal1"
    assert claims["email"] == address and claims["session_id"]
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert jwt.get_unverified_header(token)["kid"] == auth_server.signing_key.kid


async def test_given_a_wrong_password_when_signing_in_then_invalid_credentials(
    auth_server: AuthEndpoint,
) -> None:
    address = email()
    auth = client(auth_server)
    await auth.sign_up({"email": address, "password": "long-enough-1"})
    with pytest.raises(AuthApiError) as caught:
        await auth.sign_in_with_password({"email": address, "password": "wrong-password"})
    assert caught.value.code == "invalid_credentials"
    with pytest.raises(AuthApiError):
        await auth.sign_in_with_password({"email": email(), "password": "whatever-123"})


async def test_given_a_taken_email_or_weak_password_then_typed_errors(
    auth_server: AuthEndpoint,
) -> None:
    address = email()
    auth = client(auth_server)
    await auth.sign_up({"email": address, "password": "long-enough-1"})
    with pytest.raises(AuthApiError) as caught:
        await auth.sign_up({"email": address, "password": "long-enough-1"})
    assert caught.value.code == "user_already_exists"
    with pytest.raises(AuthWeakPasswordError):
        await auth.sign_up({"email": email(), "password": "short"})


async def test_given_a_session_when_refreshing_then_tokens_rotate_and_old_ones_die(
    auth_server: AuthEndpoint,
) -> None:
    auth = client(auth_server)
    first = await auth.sign_up({"email": email(), "password": "long-enough-1"})
    assert first.session is not None
    refreshed = await auth.refresh_session(first.session.refresh_token)
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != first.session.refresh_token
    with pytest.raises(AuthApiError) as caught:
        await auth.refresh_session(first.session.refresh_token)
    assert str(caught.value.code) == "refresh_token_already_used"
    # Reuse of a rotated token ends the whole session: the newest token dies too.
    with pytest.raises(AuthApiError):
        await auth.refresh_session(refreshed.session.refresh_token)


async def test_given_a_session_when_signing_out_then_its_refresh_token_is_dead(
    auth_server: AuthEndpoint,
) -> None:
    auth = client(auth_server)
    signed = await auth.sign_up({"email": email(), "password": "long-enough-1"})
    assert signed.session is not None
    user = await auth.get_user(signed.session.access_token)
    assert user is not None and user.user.id == signed.session.user.id
    await auth.admin.sign_out(signed.session.access_token, "local")
    with pytest.raises(AuthApiError):
        await auth.refresh_session(signed.session.refresh_token)
    with pytest.raises(AuthApiError):
        await auth.get_user(signed.session.access_token)


def test_given_the_sync_client_then_sign_up_and_sign_in_work(auth_server: AuthEndpoint) -> None:
    auth = SyncGoTrueClient(
        url=f"{auth_server.url}/auth/v1",
        headers={"apikey": auth_server.anon_key},
        auto_refresh_token=False,
        persist_session=False,
    )
    address = email()
    auth.sign_up({"email": address, "password": "long-enough-1"})
    response = auth.sign_in_with_password({"email": address, "password": "long-enough-1"})
    assert response.user is not None and response.user.email == address


def test_given_no_api_key_when_calling_then_401(auth_server: AuthEndpoint) -> None:
    response = httpx.post(
        f"{auth_server.url}/auth/v1/signup", json={"email": email(), "password": "long-enough-1"}
    )
    assert response.status_code == 401
    wrong = httpx.post(
        f"{auth_server.url}/auth/v1/signup",
        json={"email": email(), "password": "long-enough-1"},
        headers={"apikey": "not-a-key"},
    )
    assert wrong.status_code == 401
