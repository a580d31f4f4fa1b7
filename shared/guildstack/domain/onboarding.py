"""The 12-step onboarding: what each step finds out about the company, who does it, what it
needs first and which memory collection keeps its findings. No I/O.

The dependencies are real: positioning needs the personas, the market and the competitors;
messaging needs positioning; channels need the personas and the messages; the roadmap needs
the content pillars, the trends and the channels. Steps with nothing between them run side
by side (market, industry and personas after the company deep dive)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guildstack.domain.runs import Node
from guildstack.domain.vocabulary import Collection

__all__ = ["ONBOARDING_STEPS", "STEP_SCHEMA", "OnboardingStep", "onboarding_nodes"]


@dataclass(frozen=True)
class OnboardingStep:
    key: str
    title: str
    agent: str
    collection: Collection
    task: str
    depends_on: tuple[str, ...] = ()


C, R, K, U = (
    Collection.CODEX_KNOWLEDGE,
    Collection.INDUSTRY_RESEARCH,
    Collection.COMPETITOR_INTEL,
    Collection.USER_PREFERENCES,
)
ONBOARDING_STEPS: tuple[OnboardingStep, ...] = (
    OnboardingStep("fundamentals", "Fundamentals", "RES-020", U,
        "State the company's fundamentals as the owner gave them: what it sells, to whom, "
        "its goals for the next year, its budget and tone constraints."),
    OnboardingStep("company", "Company deep dive", "RES-001", C,
        "Go deep on the company: offer, business model, strengths, weaknesses, proof "
        "points.", ("fundamentals",)),
    OnboardingStep("personas", "Personas", "RES-003", C,
        "Describe three buyer personas: jobs to be done, pains, objections, where they look "
        "for answers.", ("company",)),
    OnboardingStep("market", "Market", "RES-001", R,
        "Size and segment the market the company sells in; name the buying triggers.",
        ("company",)),
    OnboardingStep("industry", "Industry", "RES-004", R,
        "Describe the industry: structure, regulation, economics, who holds power.",
        ("company",)),
    OnboardingStep("trends", "Trends", "MTX-006", R,
        "List the trends that will change this industry in the next two years, each with "
        "a confidence.", ("industry",)),
    OnboardingStep("competitors", "Competitors", "RES-002", K,
        "Map the main competitors: offer, price, positioning, weak spots.", ("market",)),
    OnboardingStep("positioning", "Positioning", "MUSE-026", C,
        "Write the positioning: for whom, the category, the one difference that matters and "
        "the reason to believe it.", ("personas", "market", "competitors")),
    OnboardingStep("messaging", "Messaging", "MUSE-001", C,
        "Write the message house: the core message and three pillars, each with proof.",
        ("positioning", "personas")),
    OnboardingStep("channels", "Channels", "MUSE-021", C,
        "Choose the channels that reach each persona with these messages, and why.",
        ("personas", "messaging")),
    OnboardingStep("content_pillars", "Content pillars", "MUSE-006", C,
        "Define four content pillars with example topics per channel.",
        ("messaging", "channels")),
    OnboardingStep("roadmap", "Roadmap", "MUSE-006", C,
        "Lay out a 90-day marketing roadmap: milestones, campaigns, measures.",
        ("content_pillars", "trends", "channels")),
)  # fmt: skip
BY_KEY = {s.key: s for s in ONBOARDING_STEPS}

# Every step answers in this shape (stored as the step's output, remembered as text).
STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 3, "maxLength": 2000},
        "findings": {
            "type": "array",
            "minItems": 1,
            "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "detail": {"type": "string", "minLength": 1, "maxLength": 2000},
                },
                "required": ["title", "detail"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["summary", "findings"],
    "additionalProperties": False,
}


def onboarding_nodes() -> tuple[Node, ...]:
    return tuple(Node(s.key, s.agent, s.task, s.depends_on) for s in ONBOARDING_STEPS)


def as_text(title: str, value: dict[str, Any]) -> str:
    """A step's structured output as the text remembered in its collection."""
    lines = [f"# {title}", str(value.get("summary", ""))]
    lines += [f"- {f['title']}: {f['detail']}" for f in value.get("findings", ())]
    return "\n".join(lines)
