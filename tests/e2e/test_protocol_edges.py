"""The edges of HTTP through the gateway, each answered as a problem: NUL characters,
undeclared methods and HEAD, non-canonical ids, oversize headers, and an event stream
whose reader loses access while it is open."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Team, invite_and_join, sign_up

NUL = "\u0000"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/login", {"email": "someone@example.com", "password": f"pass{NUL}word"}),
        ("/auth/signup", {"email": "someone@example.com", "password": f"pass{NUL}word1"}),
        ("/auth/signup", {"email": "someone@example.com", "password": "password1",
                          "full_name": f"Ada{NUL}"}),
        ("/auth/refresh", {"refresh_token": f"abc{NUL}"}),
    ],
)  # fmt: skip
async def test_given_a_nul_character_in_auth_input_then_422_problem(
    api: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_given_an_undeclared_method_then_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.put("/workspaces", headers={"X-Request-Id": "edge-test-0001"})
    assert response.status_code == 405, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["request_id"] == "edge-test-0001"


async def test_given_head_where_get_works_then_the_same_status_and_headers_without_body(
    api: httpx.AsyncClient, team: Team
) -> None:
    url = f"/workspaces/{team.workspace_id}"
    got = await api.get(url, headers=team.users["viewer"].auth)
    head = await api.head(url, headers=team.users["viewer"].auth)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]
    assert (await api.head("/health")).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        lambda u: u.hex,
        lambda u: "{" + str(u) + "}",
        lambda u: f"urn:uuid:{u}",
    ],
    ids=["hex", "braces", "urn"],
)
async def test_given_a_non_canonical_uuid_in_a_path_or_header_then_refused(
    api: httpx.AsyncClient, team: Team, form: Any
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    owner = team.users["owner"].auth
    in_path = await api.get(f"/workspaces/{form(workspace)}", headers=owner)
    in_header = await api.get("/memory", headers={**owner, "X-Workspace-Id": form(workspace)})
    upper = await api.get(f"/workspaces/{str(workspace).upper()}", headers=owner)

    assert in_path.status_code == 422, in_path.text
    assert in_header.status_code == 400, in_header.text
    assert upper.status_code == 200  # hex digits are case-insensitive on input


async def test_given_a_60_kb_header_then_431_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/health", headers={"X-Padding": "a" * 60_000})
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 431


async def test_given_a_reader_removed_mid_stream_then_an_error_event_ends_the_stream(
    api: httpx.AsyncClient,
) -> None:
    owner, reader = await sign_up(api, "owner"), await sign_up(api, "reader")
    workspace_id = (
        await api.post("/workspaces", json={"name": "Stream"}, headers=owner.auth)
    ).json()["id"]
    await invite_and_join(api, workspace_id, owner, reader, "viewer")
    started = await api.post(
        "/runs",
        json={"kind": "single", "title": "Held", "input": "Wait for approval.",
              "nodes": [{"key": "A", "agent": "seo_agent", "requires_approval": True}]},
        headers={**owner.auth, "X-Workspace-Id": workspace_id},
    )  # fmt: skip
    assert started.status_code == 202, started.text
    url = f"/runs/{started.json()['run']['id']}/stream"

    frames: list[tuple[str, dict[str, Any]]] = []
    event: str | None = None
    headers = {**reader.auth, "X-Workspace-Id": workspace_id}
    async with api.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():  # a broken body would raise here
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event is not None:
                frames.append((event, json.loads(line[6:])))
                if len(frames) == 1:
                    removed = await api.delete(
                        f"/workspaces/{workspace_id}/members/{reader.id}", headers=owner.auth
                    )
                    assert removed.status_code == 204

    assert frames[0][0] != "error"
    kind, problem = frames[-1]
    assert kind == "error", frames
    assert problem["status"] == 404 and problem["request_id"]
