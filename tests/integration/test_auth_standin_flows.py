"""The local Supabase Auth stand-in serves what a browser front end needs: CORS for the
configured origins, GoTrue's JSON error shape everywhere, updateUser, password recovery
and one-time-code sign-in through a local mailbox — checked with Supabase's own client."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from tests.fixtures.auth import FRONTEND_ORIGIN, AuthEndpoint

PASSWORD = "correct horse battery"


def client(auth: AuthEndpoint) -> AsyncGoTrueClient:
    return AsyncGoTrueClient(
        url=f"{auth.url}/auth/v1",
        headers={"apikey": auth.anon_key},
        auto_refresh_token=False,
        persist_session=False,
    )


def email() -> str:
    return f"front-{uuid.uuid4().hex[:10]}@example.com"


async def mail_for(auth: AuthEndpoint, to: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{auth.url}/auth/v1/mailbox", params={"email": to})
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def test_given_a_page_on_an_allowed_origin_then_preflight_and_responses_carry_cors(
    auth_server: AuthEndpoint,
) -> None:
    url = f"{auth_server.url}/auth/v1/token?grant_type=password"
    async with httpx.AsyncClient() as http:
        preflight = await http.options(
            url,
            headers={
                "Origin": FRONTEND_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "apikey, authorization, content-type, "
                "x-client-info, x-supabase-api-version",
            },
        )
        refused = await http.options(
            url,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        answer = await http.post(
            url,
            json={"email": email(), "password": "nope-nope"},
            headers={"apikey": auth_server.anon_key, "Origin": FRONTEND_ORIGIN},
        )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    assert "x-client-info" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers
    assert answer.status_code == 400
    assert answer.headers["access-control-allow-origin"] == FRONTEND_ORIGIN


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/auth/v1/nowhere", 404, "not_found"),
        ("DELETE", "/auth/v1/token", 405, "method_not_allowed"),
        ("POST", "/auth/v1/signup", 401, "no_authorization"),  # no API key
    ],
)
async def test_given_any_error_then_gotrue_json(
    auth_server: AuthEndpoint, method: str, path: str, status: int, code: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.request(method, f"{auth_server.url}{path}", json={})

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error_code"] == code
    assert response.json()["msg"]


async def test_given_update_user_then_password_and_metadata_change(
    auth_server: AuthEndpoint,
) -> None:
    auth, address = client(auth_server), email()
    await auth.sign_up({"email": address, "password": PASSWORD})

    updated = await auth.update_user({"password": "a much newer secret", "data": {"plan": "pro"}})

    assert updated.user is not None
    assert updated.user.user_metadata["plan"] == "pro"
    signed_in = await client(auth_server).sign_in_with_password(
        {"email": address, "password": "a much newer secret"}
    )
    assert signed_in.session is not None
    with pytest.raises(AuthApiError) as old:
        await client(auth_server).sign_in_with_password({"email": address, "password": PASSWORD})
    assert old.value.code == "invalid_credentials"
    with pytest.raises(AuthWeakPasswordError) as weak:
        await auth.update_user({"password": "short"})
    assert weak.value.code == "weak_password"


async def test_given_an_email_another_user_has_then_update_user_refuses_it(
    auth_server: AuthEndpoint,
) -> None:
    taken = email()
    await client(auth_server).sign_up({"email": taken, "password": PASSWORD})
    auth = client(auth_server)
    await auth.sign_up({"email": email(), "password": PASSWORD})

    with pytest.raises(AuthApiError) as refused:
        await auth.update_user({"email": taken})

    assert refused.value.code == "email_exists"
    moved = await auth.update_user({"email": email()})
    assert moved.user is not None and moved.user.email != taken


async def test_given_a_recovery_then_the_mailed_code_signs_in_once(
    auth_server: AuthEndpoint,
) -> None:
    address = email()
    await client(auth_server).sign_up({"email": address, "password": PASSWORD})
    auth = client(auth_server)

    await auth.reset_password_for_email(address, {"redirect_to": f"{FRONTEND_ORIGIN}/reset"})
    await auth.reset_password_for_email(f"nobody-{address}")  # same answer, no mail

    (mail,) = await mail_for(auth_server, address)
    assert await mail_for(auth_server, f"nobody-{address}") == []
    assert mail["code"] in mail["text"]
    session = await auth.verify_otp({"email": address, "token": mail["code"], "type": "recovery"})
    assert session.user is not None and session.user.email == address
    await auth.update_user({"password": "recovered at last"})
    with pytest.raises(AuthApiError) as again:
        await auth.verify_otp({"email": address, "token": mail["code"], "type": "recovery"})
    assert again.value.code == "otp_expired"


async def test_given_a_one_time_code_then_a_new_user_signs_in_without_a_password(
    auth_server: AuthEndpoint,
) -> None:
    address, auth = email(), client(auth_server)

    await auth.sign_in_with_otp({"email": address})

    (mail,) = await mail_for(auth_server, address)
    wrong = "000000" if mail["code"] != "000000" else "111111"
    with pytest.raises(AuthApiError):
        await auth.verify_otp({"email": address, "token": wrong, "type": "email"})
    session = await auth.verify_otp({"email": address, "token": mail["code"], "type": "email"})
    assert session.session is not None and session.user is not None
    with pytest.raises(AuthApiError) as closed:
        await auth.sign_in_with_otp(
            {"email": f"other-{address}", "options": {"should_create_user": False}}
        )
    assert closed.value.code == "otp_disabled"


async def test_given_a_mailed_link_then_it_redirects_with_the_session_in_the_fragment(
    auth_server: AuthEndpoint,
) -> None:
    address = email()
    await client(auth_server).sign_in_with_otp(
        {"email": address, "options": {"email_redirect_to": f"{FRONTEND_ORIGIN}/welcome"}}
    )
    (mail,) = await mail_for(auth_server, address)

    async with httpx.AsyncClient() as http:
        followed = await http.get(mail["link"])
        reused = await http.get(mail["link"])

    assert followed.status_code == 303
    target = urlsplit(followed.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{FRONTEND_ORIGIN}/welcome"
    fragment = parse_qs(target.fragment)
    assert fragment["token_type"] == ["bearer"]
    assert fragment["type"] == ["magiclink"]
    me = await client(auth_server).get_user(fragment["access_token"][0])
    assert me is not None and me.user.email == address
    assert "error_code=otp_expired" in reused.headers["location"]
