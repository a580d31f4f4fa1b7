"""HTTP clients against the running local gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest


@dataclass
class User:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
async def api(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as client:
        yield client


async def sign_up(api: httpx.AsyncClient, name: str = "user") -> User:
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    response = await api.post(
        "/auth/signup", json={"email": email, "password": password, "full_name": name.title()}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    session = body["session"]
    return User(
        body["user"]["id"], email, password, session["access_token"], session["refresh_token"]
    )
