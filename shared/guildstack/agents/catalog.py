"""Catalog files (`infra/catalog/*.yaml`): parsed and validated with pydantic, mapped to domain.

Loaded on first use, never at import: a function that never calls a model pays nothing.
"""

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from guildstack.domain.agents import AgentSpec, Guild
from guildstack.domain.models import ModelRef, Price, Tier
from guildstack.domain.pricing import ModelBook

AGENT_CODE = r"^[A-Za-z][A-Za-z0-9_-]{1,63}$"
SLUG = r"^[a-z][a-z0-9_]{1,31}$"

Code = Annotated[str, StringConstraints(pattern=AGENT_CODE)]
Slug = Annotated[str, StringConstraints(pattern=SLUG)]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class CatalogAgent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    role: Slug
    guild: Guild
    description: Annotated[str, StringConstraints(min_length=20, max_length=600)]
    system_prompt: Annotated[str, StringConstraints(min_length=80, max_length=8000)]
    model_tier: Tier = Tier.STANDARD
    temperature: float = Field(default=0.7, ge=0, le=1)
    max_tokens: int = Field(default=2048, ge=256, le=8192)
    capabilities: list[Slug] = Field(default_factory=list)
    keywords: list[Keyword] = Field(default_factory=list, max_length=40)

    @field_validator("keywords")
    @classmethod
    def _plain_keywords(cls, keywords: list[str]) -> list[str]:
        """The router folds the message, not the catalog: an upper-case, padded or
        punctuation-only keyword would be a typo that silently never matches."""
        for keyword in keywords:
            if keyword != keyword.lower() or keyword != " ".join(keyword.split()):
                raise ValueError(f"keyword {keyword!r} must be lower case, single-spaced")
            if not any(char.isalnum() for char in keyword):
                raise ValueError(f"keyword {keyword!r} has no letter or digit to match")
        duplicates = sorted({k for k in keywords if keywords.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate keywords: {duplicates}")
        return keywords

    def to_spec(self) -> AgentSpec:
        return AgentSpec.of(**self.model_dump())


class AgentCatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    agents: list[CatalogAgent] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        codes = [a.code for a in self.agents]
        duplicates = {code for code in codes if codes.count(code) > 1}
        if duplicates:
            raise ValueError(f"duplicate agent codes: {sorted(duplicates)}")
        return self


class PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cache_read: Decimal = Field(default=Decimal(0), ge=0)
    cache_write: Decimal = Field(default=Decimal(0), ge=0)


class ModelCatalogFile(BaseModel):
    """`prices`: USD per million tokens per `provider/model`; `tiers`: failover chains."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    prices: dict[str, PriceEntry]
    tiers: dict[Tier, list[str]]

    @field_validator("tiers")
    @classmethod
    def _every_tier(cls, tiers: dict[Tier, list[str]]) -> dict[Tier, list[str]]:
        missing = [t.value for t in Tier if not tiers.get(t)]
        if missing:
            raise ValueError(f"tiers without models: {missing}")
        for refs in tiers.values():
            for ref in refs:
                ModelRef.parse(ref)
        return tiers

    def to_book(self, defaults: Mapping[str, Price] | None = None) -> ModelBook:
        prices = {
            key: Price(p.input, p.output, p.cache_read, p.cache_write)
            for key, p in self.prices.items()
        }
        tiers = {tier: tuple(ModelRef.parse(r) for r in refs) for tier, refs in self.tiers.items()}
        book = ModelBook(prices, tiers, dict(defaults or {}))
        for chain in tiers.values():
            for ref in chain:
                book.price(ref)  # every model a tier can use must have a price
        return book


def _yaml(path: Path) -> object:
    import yaml  # lazily: only the first catalog read pays for it

    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@lru_cache(maxsize=4)
def load_agents(path: Path) -> tuple[AgentSpec, ...]:
    """The built-in agents, validated; raises `pydantic.ValidationError` on a bad file."""
    catalog = AgentCatalogFile.model_validate(_yaml(path))
    return tuple(agent.to_spec() for agent in catalog.agents)


def load_model_book(
    path: Path,
    tier_overrides: dict[Tier, list[str]] | None = None,
    defaults: Mapping[str, Price] | None = None,
) -> ModelBook:
    """Prices and tier chains; `tier_overrides` (from settings) replace whole chains;
    `defaults` price a provider's models the catalog does not name."""
    raw = _yaml(path)
    catalog = ModelCatalogFile.model_validate(raw)
    if tier_overrides:
        tiers = {**catalog.tiers, **tier_overrides}
        catalog = ModelCatalogFile.model_validate(
            {**catalog.model_dump(mode="json"), "tiers": {k.value: v for k, v in tiers.items()}}
        )
    return catalog.to_book(defaults)
