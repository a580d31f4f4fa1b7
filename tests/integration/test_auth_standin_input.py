"""The auth stand-in refuses input Postgres cannot store (NUL characters) as GoTrue does,
with a 422 `validation_failed`, never a 500 the API would report as something else."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.auth import AuthEndpoint

NUL = "\u0000"


def _email() -> str:
    return f"nul-{uuid.uuid4().hex[:10]}@example.com"


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "signup email": ("/signup", {"email": f"a{NUL}b@example.com", "password": "long-enough-1"}),
    "signup password": ("/signup", {"email": "", "password": f"long{NUL}enough-1"}),
    "signup metadata": (
        "/signup",
        {"email": "", "password": "long-enough-1", "data": {"full_name": f"Ada{NUL}"}},
    ),
    "password grant email": (
        "/token?grant_type=password",
        {"email": f"x{NUL}@example.com", "password": "long-enough-1"},
    ),
    "password grant password": (
        "/token?grant_type=password",
        {"email": "", "password": f"long{NUL}enough-1"},
    ),
    "refresh grant": ("/token?grant_type=refresh_token", {"refresh_token": f"abc{NUL}def"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_given_a_nul_character_when_posted_to_the_stand_in_then_422(
    auth_server: AuthEndpoint, case: str
) -> None:
    path, body = CASES[case]
    if body.get("email") == "":
        body = {**body, "email": _email()}
    async with httpx.AsyncClient(base_url=f"{auth_server.url}/auth/v1") as client:
        response = await client.post(path, json=body, headers={"apikey": auth_server.anon_key})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
