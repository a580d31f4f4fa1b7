"""The composition root: the one place that builds adapters and services from settings.

Everything is built on first use, so importing a function's handler stays cheap (no SDK,
no pool, no network at cold start). Tests pass fakes: `build(settings, identity=FakeIdentity())`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from guildstack.config import Settings, get_settings
from guildstack.domain.errors import DependencyUnavailable

if TYPE_CHECKING:
    from guildstack.adapters.postgres.database import PostgresDatabase
    from guildstack.adapters.upstash import UpstashClientFactory
    from guildstack.ports.identity import IdentityProvider, TokenVerifier
    from guildstack.ports.ratelimit import RateLimiter
    from guildstack.ports.workspaces import WorkspaceStore
    from guildstack.services.accounts import AccountService
    from guildstack.services.health import HealthService
    from guildstack.services.workspaces import WorkspaceService

OVERRIDABLE = frozenset(
    {
        "database",
        "identity",
        "token_verifier",
        "user_rate_limiter",
        "public_rate_limiter",
        "workspace_store",
        "health",
    }
)


class Container:
    """Adapters and services for one process, each created the first time it is asked for."""

    def __init__(self, settings: Settings, overrides: dict[str, Any]) -> None:
        unknown = set(overrides) - OVERRIDABLE
        if unknown:
            raise TypeError(f"cannot override {sorted(unknown)}; allowed: {sorted(OVERRIDABLE)}")
        self.settings = settings
        # cached_property reads the instance dict first, so an override simply pre-fills it.
        self.__dict__.update(overrides)

    @cached_property
    def database(self) -> PostgresDatabase:
        from guildstack.adapters.postgres.database import PostgresDatabase

        if self.settings.database_url is None:
            raise DependencyUnavailable("DATABASE_URL is not configured.")
        return PostgresDatabase(
            self.settings.database_url.get_secret_value(),
            min_size=self.settings.db_pool_min_size,
            max_size=self.settings.db_pool_max_size,
            connect_timeout=self.settings.db_connect_timeout_seconds,
        )

    @cached_property
    def identity(self) -> IdentityProvider:
        from guildstack.adapters.supabase_identity import SupabaseIdentity

        key = self.settings.supabase_anon_key
        if self.settings.supabase_url is None or key is None:
            raise DependencyUnavailable("SUPABASE_URL and SUPABASE_ANON_KEY are not configured.")
        return SupabaseIdentity(self.settings.supabase_url, key.get_secret_value())

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        from guildstack.adapters.jwt_verifier import JwtVerifier, jwks_cache_for

        issuer, jwks_url = self.settings.issuer, self.settings.jwks_url
        if issuer is None:
            raise DependencyUnavailable("SUPABASE_URL (or JWT_ISSUER) is not configured.")
        secret = self.settings.supabase_jwt_secret
        return JwtVerifier(
            issuer=issuer,
            audience=self.settings.jwt_audience,
            jwks=jwks_cache_for(jwks_url) if jwks_url else None,
            hs256_secret=secret.get_secret_value() if secret else None,
            leeway_seconds=self.settings.jwt_leeway_seconds,
        )

    @cached_property
    def upstash(self) -> UpstashClientFactory | None:
        from guildstack.adapters.upstash import UpstashClientFactory

        url, token = self.settings.upstash_redis_rest_url, self.settings.upstash_redis_rest_token
        if url is None or token is None:
            return None
        return UpstashClientFactory(url, token.get_secret_value())

    @cached_property
    def user_rate_limiter(self) -> RateLimiter | None:
        """Per signed-in user (and per workspace) requests per minute."""
        return self._rate_limiter(self.settings.rate_limit_per_minute, "user")

    @cached_property
    def public_rate_limiter(self) -> RateLimiter | None:
        """Per client address, for the routes that take no token."""
        return self._rate_limiter(self.settings.public_rate_limit_per_minute, "public")

    def _rate_limiter(self, per_minute: int, scope: str) -> RateLimiter | None:
        from guildstack.adapters.upstash import UpstashRateLimiter

        if self.upstash is None:
            return None
        return UpstashRateLimiter(
            self.upstash,
            limit=per_minute,
            window_seconds=60,
            prefix=f"{self.settings.rate_limit_prefix}:{scope}",
        )

    @cached_property
    def workspace_store(self) -> WorkspaceStore:
        from guildstack.adapters.postgres.workspaces import PostgresWorkspaceStore

        return PostgresWorkspaceStore(self.database)

    @cached_property
    def accounts(self) -> AccountService:
        from guildstack.services.accounts import AccountService

        return AccountService(self.identity, self.workspace_store)

    @cached_property
    def workspaces(self) -> WorkspaceService:
        from guildstack.services.workspaces import WorkspaceService

        return WorkspaceService(self.workspace_store)

    @cached_property
    def health(self) -> HealthService:
        from guildstack.adapters.postgres.probe import PostgresProbe
        from guildstack.adapters.upstash import UpstashProbe
        from guildstack.services.health import HealthService, MissingProbe

        probes: list[Any] = []
        missing: list[str] = []
        if self.settings.database_url is not None:
            probes.append(PostgresProbe(self.database))
        else:
            probes.append(MissingProbe("postgres", critical=True))
        if self.upstash is not None:
            probes.append(UpstashProbe(self.upstash))
        else:
            missing.append("redis")
        missing.append("queue")  # the step queue arrives with durable runs
        return HealthService(probes, not_configured=missing)


def build(settings: Settings | None = None, **overrides: Any) -> Container:
    """Wire the process's services; `overrides` replace adapters or services (tests)."""
    return Container(settings or get_settings(), overrides)
