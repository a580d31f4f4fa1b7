"""The model book: prices per model and the failover chain of each tier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from guildstack.domain.errors import InvalidRequest
from guildstack.domain.models import ModelRef, Price, Tier


@dataclass(frozen=True)
class ModelBook:
    """`prices` keyed `provider/model`; `provider/*` prices every model of a provider;
    `defaults` (per provider, from settings) price the models the catalog does not name, so
    an unpriced model of such a provider (an OpenRouter model, say) is never free by accident."""

    prices: Mapping[str, Price]
    tiers: Mapping[Tier, tuple[ModelRef, ...]]
    defaults: Mapping[str, Price] = field(default_factory=dict)

    def price(self, ref: ModelRef) -> Price:
        found = (
            self.prices.get(str(ref))
            or self.prices.get(f"{ref.provider}/*")
            or self.defaults.get(ref.provider)
        )
        if found is None:
            raise InvalidRequest(f"No price is known for model {ref}; add it to the catalog.")
        return found

    def chain(self, tier: Tier, available: frozenset[str]) -> tuple[ModelRef, ...]:
        """The tier's models whose provider is configured, in failover order."""
        return tuple(ref for ref in self.tiers.get(tier, ()) if ref.provider in available)
