"""Typed settings, validated at cold start. Nothing else reads `os.environ`.

A plain pydantic model filled from upper-case environment variables: pydantic-settings
would do the same for ~65 ms more of cold-start import time.
"""

import os
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Json, SecretStr, model_validator

from guildstack import __version__
from guildstack.domain.vocabulary import Tier

Stage = Literal["local", "test", "dev", "staging", "prod"]

# The devstack signs nothing with this; it exists so a legacy-HS256 test setup has a value.
# Deployed stages refuse it.
LOCAL_JWT_SECRET = "guildstack-local-development-secret-do-not-deploy"  # noqa: S105
LOCAL_UPSTASH_TOKEN = "guildstack-local-upstash-token"  # noqa: S105
DEPLOYED_STAGES: frozenset[str] = frozenset({"dev", "staging", "prod"})
# The repository's infra/catalog locally; /opt/infra/catalog in the Lambda layer.
DEFAULT_CATALOG_DIR = Path(__file__).resolve().parents[2] / "infra" / "catalog"
# Values that mean "not configured" (a Secrets Manager key must exist to be resolved).
UNSET_VALUES = frozenset({"", "none", "unset"})


class Settings(BaseModel):
    """Everything configurable, from the environment (names in upper case)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: Stage = "local"
    service_name: str = "guildstack"
    version: str = __version__

    database_url: SecretStr | None = None
    db_pool_min_size: int = Field(default=0, ge=0)
    db_pool_max_size: int = Field(default=5, ge=1)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long a transaction waits for a free pooled connection before answering 503 (busy).
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    # Legacy projects sign access tokens with a shared HS256 secret instead of a JWKS.
    supabase_jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str = "authenticated"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # The longest lifetime (exp - iat) an access token may have; longer ones are refused.
    jwt_max_lifetime_seconds: int = Field(default=86_400, ge=60, le=604_800)
    # How long a container trusts that a token's account still exists (positive answers
    # only): a deleted or banned account is refused everywhere within this time.
    token_account_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Also refuse tokens whose session has ended (sign-out, revocation); a database read
    # per user and session every `token_account_cache_seconds`.
    jwt_check_session: bool = False
    # How long a stream ticket (`POST /runs/{id}/stream-ticket`) opens its stream.
    stream_ticket_seconds: int = Field(default=60, ge=5, le=600)

    upstash_redis_rest_url: str | None = None
    upstash_redis_rest_token: SecretStr | None = None

    rate_limit_per_minute: int = Field(default=60, ge=1)
    # Requests per minute of all a workspace's members together (X-Workspace-Id routes);
    # only members' requests count. Membership answers are kept per container this long.
    workspace_rate_limit_per_minute: int = Field(default=300, ge=1)
    workspace_membership_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Unauthenticated routes (sign-up, login, refresh) are limited per client address.
    public_rate_limit_per_minute: int = Field(default=30, ge=1)
    # Failed logins per account (whatever the address) in a sliding window; beyond it the
    # account's logins wait (429) until the oldest failure leaves the window.
    login_failures_per_email: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1, le=86_400)
    # Requests carrying a token that fails verification, per client address.
    invalid_token_rate_limit_per_minute: int = Field(default=30, ge=1)
    rate_limit_prefix: str = "gs:rl"
    # The user's and the workspace's limits are local-first: a container admits requests
    # without asking Redis while its view of the count (synced at least every 0.2 s) is
    # under this share of the limit; above it every request is counted in Redis. 0: always.
    rate_limit_local_share: float = Field(default=0.5, ge=0, le=1)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Model providers: none configured means the deterministic offline provider.
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    # Any OpenAI-compatible server (Ollama, llama.cpp, vLLM, OpenRouter), provider `compatible`.
    openai_compatible_base_url: str | None = None
    openai_compatible_api_key: SecretStr | None = None
    # JSON: {"fast": ["compatible/llama3.1", "anthropic/claude-haiku-4-5"], ...}
    model_tiers: Json[dict[Tier, list[str]]] | None = None
    # USD per million tokens for an OpenAI-compatible model the catalog does not price (an
    # OpenRouter model, say), so budgets hold; set both to 0 for a server of your own.
    compatible_input_price_usd: Decimal = Field(default=Decimal("3.00"), ge=0)
    compatible_output_price_usd: Decimal = Field(default=Decimal("15.00"), ge=0)
    model_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    model_max_attempts: int = Field(default=3, ge=1, le=10)
    catalog_dir: Path = DEFAULT_CATALOG_DIR

    # Memory embeddings: `openai` (text-embedding-3-small at 384 dimensions) or `local`
    # (all-MiniLM-L6-v2, installed with the dev dependencies). Unset: openai when
    # OPENAI_API_KEY is set, else local.
    embedder: Literal["openai", "local"] | None = None

    # Set (by template.yaml) where the Lambda Web Adapter fronts the app: its
    # `x-amzn-request-context` header is then the invocation's, never the client's.
    aws_lwa_invoke_mode: str | None = None

    steps_queue_url: str | None = None
    # The steps' dead-letter queue: the self-audit reports its depth.
    steps_dlq_url: str | None = None
    # The self-audit calls a run in flight without an event for this long stuck.
    audit_stuck_run_minutes: int = Field(default=60, ge=1, le=10_080)
    sqs_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    # A claimed step is the worker's until its lease ends (keep it above the worker timeout).
    step_lease_seconds: int = Field(default=180, ge=1, le=3600)
    # How long a chat turn waits for the routing model before routing by keywords.
    router_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # The sweeper re-sends steps queued longer than this (their message may be lost).
    step_resend_after_seconds: int = Field(default=300, ge=0, le=86_400)
    # A failed attempt is retried after attempt × this many seconds (0: the queue's timeout).
    step_retry_backoff_seconds: int = Field(default=10, ge=0, le=900)

    # Tools: model rounds per step, delegation limits, web.fetch's limits.
    tool_max_iterations: int = Field(default=4, ge=0, le=20)
    tool_max_delegation_depth: int = Field(default=2, ge=0, le=5)
    tool_max_delegations_per_step: int = Field(default=3, ge=0, le=10)
    # How long a worker trusts the per-agent tool switches it read for a workspace.
    tool_switch_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    web_fetch_max_bytes: int = Field(default=512_000, ge=1024, le=10_000_000)
    web_fetch_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Address ranges web.fetch may reach although they are not public (local development
    # and tests only: deployed stages refuse any).
    web_fetch_allowed_networks: list[str] = Field(default_factory=list)
    # External data APIs (tools search.brave, news.search, semrush.keywords).
    brave_search_api_key: SecretStr | None = None
    newsapi_api_key: SecretStr | None = None
    semrush_api_key: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: object) -> object:
        if isinstance(data, dict):
            value = data.get("cors_origins")
            if isinstance(value, str):
                data["cors_origins"] = [o.strip() for o in value.split(",") if o.strip()]
            value = data.get("web_fetch_allowed_networks")
            if isinstance(value, str):
                data["web_fetch_allowed_networks"] = [
                    n.strip() for n in value.split(",") if n.strip()
                ]
            for name, value in list(data.items()):
                if isinstance(value, str) and value.strip().lower() in UNSET_VALUES:
                    data[name] = None
        return data

    @model_validator(mode="after")
    def _refuse_development_defaults(self) -> Self:
        if self.stage not in DEPLOYED_STAGES:
            return self
        problems = []
        if self.database_url is None:
            problems.append("DATABASE_URL is required")
        if self.supabase_url is None:
            problems.append("SUPABASE_URL is required")
        if self.web_fetch_allowed_networks:
            problems.append("WEB_FETCH_ALLOWED_NETWORKS is for local development only")
        secret = self.supabase_jwt_secret
        if secret is not None and secret.get_secret_value() == LOCAL_JWT_SECRET:
            problems.append("SUPABASE_JWT_SECRET is the local development secret")
        token = self.upstash_redis_rest_token
        if token is not None and token.get_secret_value() == LOCAL_UPSTASH_TOKEN:
            problems.append("UPSTASH_REDIS_REST_TOKEN is the local development token")
        if problems:
            raise ValueError(f"refusing to start stage {self.stage!r}: " + "; ".join(problems))
        return self

    @property
    def issuer(self) -> str | None:
        """The JWT issuer: explicit, or Supabase's `<url>/auth/v1`."""
        if self.jwt_issuer:
            return self.jwt_issuer
        if self.supabase_url:
            return self.supabase_url.rstrip("/") + "/auth/v1"
        return None

    @property
    def behind_web_adapter(self) -> bool:
        return self.aws_lwa_invoke_mode is not None

    @property
    def jwks_url(self) -> str | None:
        issuer = self.issuer
        return f"{issuer}/.well-known/jwks.json" if issuer else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Settings from `NAME` variables for each field `name`; unknown variables are ignored."""
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (at cold start)."""
    return Settings.from_environ()
