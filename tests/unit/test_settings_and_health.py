"""Settings validation at cold start, and the health aggregation."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from guildstack.bootstrap import build
from guildstack.config import LOCAL_JWT_SECRET, Settings
from guildstack.services.health import HealthService, MissingProbe


def test_given_a_deployed_stage_without_a_database_then_settings_refuse() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL is required"):
        Settings(stage="prod", supabase_url="https://x.supabase.co")


def test_given_prod_with_the_local_jwt_secret_then_settings_refuse() -> None:
    with pytest.raises(ValidationError, match="local development secret"):
        Settings(
            stage="prod",
            database_url=SecretStr("postgresql://db"),
            supabase_url="https://x.supabase.co",
            supabase_jwt_secret=SecretStr(LOCAL_JWT_SECRET),
        )


def test_given_cors_as_a_comma_list_then_it_is_split() -> None:
    settings = Settings.model_validate({"cors_origins": "https://a.test, https://b.test"})
    assert settings.cors_origins == [
        "https://a.test",
        "https://b.test",
    ]


def test_given_supabase_url_then_issuer_and_jwks_follow() -> None:
    settings = Settings(supabase_url="https://x.supabase.co/")
    assert settings.issuer == "https://x.supabase.co/auth/v1"
    assert settings.jwks_url == "https://x.supabase.co/auth/v1/.well-known/jwks.json"


def test_given_an_unknown_override_then_build_refuses() -> None:
    with pytest.raises(TypeError, match="cannot override"):
        build(Settings(), modle=object())


class Probe:
    def __init__(self, name: str, ok: bool, critical: bool) -> None:
        self.name, self.ok, self.critical = name, ok, critical

    async def check(self) -> bool:
        return self.ok


async def test_given_redis_down_then_degraded_but_serving() -> None:
    report = await HealthService(
        [Probe("postgres", True, True), Probe("redis", False, False)]
    ).report()
    assert (report.status, report.serving) == ("degraded", True)
    assert report.checks == {"postgres": "ok", "redis": "down"}


async def test_given_postgres_down_then_not_serving() -> None:
    report = await HealthService([MissingProbe("postgres", critical=True)], ["queue"]).report()
    assert (report.status, report.serving) == ("degraded", False)
    assert report.checks == {"postgres": "down", "queue": "not_configured"}
