"""Property-based fuzz of every API function's OpenAPI document (schemathesis).

Each app runs in-process (ASGI) on the real database, Redis, auth stand-in and queue,
called as a signed-in member (a real token, the member's workspace in `X-Workspace-Id`).
Cases that fit the document and cases that do not (negative mode); a fixed seed
(derandomized hypothesis) and a bounded number of cases per operation keep the step
reproducible and short. Any 5xx fails, and so does a status or content type the document
does not declare.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from guildstack.bootstrap import build
from guildstack.config import Settings
from tests.fixtures.auth import AuthEndpoint

pytestmark = pytest.mark.fuzz

# The API functions (template.yaml's HTTP functions) by their app module.
APPS = ["functions.auth.app", "functions.agents.app", "functions.runs.app",
        "functions.tools.app", "functions.chat.app", "functions.memory.app",
        "functions.stream.app"]  # fmt: skip
CASES_PER_OPERATION = 25  # per generation mode (valid, then invalid input)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@dataclass(frozen=True)
class Member:
    token: str
    workspace_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Workspace-Id": self.workspace_id}


@pytest.fixture(scope="session")
def fuzz_settings(stack_settings: Settings) -> Settings:
    """The stack's settings with limits no fuzz run reaches (a 429 would hide the rest)."""
    return stack_settings.model_copy(
        update={
            "rate_limit_per_minute": 1_000_000,
            "workspace_rate_limit_per_minute": 1_000_000,
            "public_rate_limit_per_minute": 1_000_000,
            "invalid_token_rate_limit_per_minute": 1_000_000,
            "login_failures_per_email": 1_000_000,
            "rate_limit_prefix": f"gs:fuzz:{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.fixture(scope="session")
def member(auth_server: AuthEndpoint, database_url: str) -> Member:
    """A signed-up user (through the auth stand-in) who owns a workspace."""
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    signed_up = httpx.post(
        f"{auth_server.url}/auth/v1/signup",
        json={"email": email, "password": f"pw-{uuid.uuid4().hex}"},
        headers={"apikey": auth_server.anon_key},
    )
    signed_up.raise_for_status()
    body = signed_up.json()
    claims = {"sub": body["user"]["id"], "role": "authenticated", "email": email}
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('request.jwt.claim.sub', %s, true),"
            " set_config('role', 'authenticated', true)",
            (json.dumps(claims), claims["sub"]),
        )
        row = conn.execute(
            "select id from public.create_workspace('Fuzz', 'fuzz', null)"
        ).fetchone()
    assert row is not None
    return Member(body["access_token"], str(row[0]))


@pytest.fixture(scope="module", params=APPS)
def api_schema(request: pytest.FixtureRequest, fuzz_settings: Settings) -> Iterator[OpenApiSchema]:
    """The app's own document, its requests served in-process on schemathesis's loop."""
    container = build(fuzz_settings)
    app = importlib.import_module(request.param).create(container)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    if "database" in vars(container):
        # The pool lives on the one loop schemathesis serves ASGI apps on: closed there.
        asgi._get_portal().call(container.database.close)  # noqa: SLF001


def fuzz_operation(operation: Any, member: Member, mode: GenerationMode) -> None:
    """A fixed-seed, bounded hypothesis run over one operation's cases."""

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=CASES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=member.headers, checks=CHECKS)

    run()


def test_every_operation_answers_as_its_document_says(
    api_schema: OpenApiSchema, member: Member
) -> None:
    failures: list[str] = []
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        operations.append(result.ok())
    assert operations
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz_operation(operation, member, mode)
            except Unsatisfiable:  # no input to get wrong (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - try every operation
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
