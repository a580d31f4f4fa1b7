"""What the Council of Lords is asked: a lord's plan for a campaign brief (which guild agents
do what, in which order, for which share of the budget), a lord's review of a guild's
output, a guild agent's task (and its revision), and the Herald's brief in sections. Plans,
reviews and briefs are structured (JSON schemas). No I/O.

Every schema carries a `default` that is a valid answer (the offline provider answers it):
the plan's default is the keyword baseline (`baseline_plan`), a review's is an approval,
the brief's is assembled from the guilds' outputs, so offline runs are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guildstack.domain.agents import AgentSpec
from guildstack.domain.campaigns import (
    BRIEF_SECTIONS,
    HERALD,
    MAX_PLAN_TASKS,
    PLAN_GUILDS,
    Campaign,
)
from guildstack.domain.models import ChatMessage, ModelRequest, Tier
from guildstack.domain.routing import route_by_keywords
from guildstack.domain.runs import Handoff

PLANNER = "LORD-003"  # the Strategos: campaign strategy
TREASURER = "LORD-001"  # the Architect: routes requests and allocates the budget
# Which lord reviews each guild's output.
REVIEWERS: Mapping[str, str] = {
    "research": "LORD-002",  # the Cognition: knowledge validation
    "matrix": "LORD-005",  # the Seer: forecasts and signals
    "muse": "LORD-004",  # the Aesthete: creative quality, brand alignment
    "guardian": "LORD-006",  # the Arbiter: settles risk against ambition
}
# The share of the campaign's budget kept for the council's own calls (plan, brief).
COUNCIL_SHARE = 0.2
# The baseline: how many agents of each guild a brief takes, and who waits for whom.
_BASELINE: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("research", 5, ()),
    ("matrix", 5, ()),
    ("muse", 4, ("research", "matrix")),
    ("guardian", 1, ("muse",)),
)
_OUTPUT_CHARS = 6_000
SECTION_CHARS = 4_000


def baseline_plan(campaign: Campaign, agents: Sequence[AgentSpec]) -> dict[str, Any]:
    """The plan a keyword router makes: per guild, the agents whose keywords the campaign
    uses (else the guild's first agents): up to five research and five matrix agents side
    by side, then four muse agents on their findings, then a guardian on the content;
    shares split evenly."""
    text = f"{campaign.describe()}\nintelligence brief {campaign.objective_type.value}"
    tasks: list[dict[str, Any]] = []
    keys_of: dict[str, list[str]] = {}
    for guild, count, after in _BASELINE:
        members = [a for a in agents if a.guild == guild]
        picked = [r.code for r in route_by_keywords(text, members, core="").specialists]
        chosen = list(dict.fromkeys([*picked, *(a.code for a in members)]))[:count]
        for code in chosen:
            key = f"{guild}_{len(keys_of.get(guild, [])) + 1}"
            keys_of.setdefault(guild, []).append(key)
            spec = next(a for a in agents if a.code == code)
            tasks.append(
                {
                    "key": key,
                    "agent": code,
                    "instruction": f"As {spec.name}, {_GUILD_TASK[guild]}",
                    "depends_on": [k for g in after for k in keys_of.get(g, [])],
                    "budget_share": 0.0,
                }
            )
    share = round((1 - COUNCIL_SHARE) / max(len(tasks), 1) - 0.0005, 3)
    for task in tasks:
        task["budget_share"] = share
    return {
        "rationale": (
            "Research and matrix agents gather facts and signals side by side; muse agents "
            "turn them into messages; a guardian checks the result before the Herald writes "
            "the brief."
        ),
        "tasks": tasks,
    }


_GUILD_TASK: Mapping[str, str] = {
    "research": "research the market, audience and competitors this campaign faces: facts "
    "with their sources, and what they mean for the campaign.",
    "matrix": "read the signals: trends, competitor moves and forecasts that matter for "
    "this campaign's objective, each with a confidence.",
    "muse": "propose the positioning line, three key messages and the channels to carry "
    "them, grounded in the research handed to you.",
    "guardian": "check the proposed messages and channels for legal, brand and platform "
    "risks; list each risk with the fix.",
}


def plan_schema(agents: Sequence[AgentSpec], default: Mapping[str, Any]) -> dict[str, Any]:
    codes = sorted({a.code for a in agents})
    return {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "minLength": 3, "maxLength": 2000},
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PLAN_TASKS,
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                        "agent": {"enum": codes},
                        "instruction": {"type": "string", "minLength": 3, "maxLength": 2000},
                        "depends_on": {"type": "array", "items": {"type": "string"}},
                        "budget_share": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["key", "agent", "instruction", "depends_on", "budget_share"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["rationale", "tasks"],
        "additionalProperties": False,
        "default": dict(default),
    }


def plan_request(
    lord: AgentSpec, campaign: Campaign, agents: Sequence[AgentSpec], default: Mapping[str, Any]
) -> ModelRequest:
    roster = "\n".join(f"- {a.code} ({a.guild}): {a.name}: {a.description}" for a in agents)
    prompt = (
        f"{campaign.describe()}\n\n# The guild agents you may command\n{roster}\n\n"
        "# Your task\nPlan the campaign's intelligence brief. Pick the guild agents it "
        "needs (research, matrix, muse, guardian), give each one task with a short key "
        "(lower case), the keys of the tasks whose output it needs, and its share of the "
        f"campaign's budget (shares add up to at most {1 - COUNCIL_SHARE:.2f}: the rest "
        "pays for the council's own work). Tasks without dependencies run side by side."
    )
    return ModelRequest(
        system=lord.system_prompt,
        messages=(ChatMessage("user", prompt),),
        tier=Tier.FAST,
        temperature=0.2,
        max_tokens=2048,
        json_schema=plan_schema(agents, default),
    )


def task_request(
    agent: AgentSpec,
    campaign_text: str,
    instruction: str,
    handoffs: Sequence[Handoff],
    *,
    draft: str | None = None,
    reasons: Sequence[str] = (),
    max_tokens: int | None = None,
) -> ModelRequest:
    parts = [f"# The campaign\n{campaign_text}", f"# Your task\n{instruction}"]
    for h in handoffs:
        parts.append(f"# From `{h.step_key}` ({h.agent_code})\n{h.content[:_OUTPUT_CHARS]}")
    if draft is not None:
        listed = "\n".join(f"- {r}" for r in reasons)
        parts.append(
            f"# Your first draft\n{draft[:_OUTPUT_CHARS]}\n\n# The council sent it back\n"
            f"{listed}\n\nRevise the draft so that each reason is answered."
        )
    return ModelRequest(
        system=agent.system_prompt,
        messages=(ChatMessage("user", "\n\n".join(parts)),),
        tier=agent.model_tier,
        temperature=agent.temperature,
        max_tokens=min(agent.max_tokens, max_tokens or agent.max_tokens),
    )


REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["approve", "reject"]},
        "reasons": {
            "type": "array",
            "maxItems": 8,
            "items": {"type": "string", "minLength": 3, "maxLength": 500},
        },
    },
    "required": ["verdict", "reasons"],
    "additionalProperties": False,
    # A lord with nothing to object approves (and so does the offline provider).
    "default": {"verdict": "approve", "reasons": []},
}


REVISED = "revised after your review"


def review_request(
    lord: AgentSpec,
    campaign_text: str,
    instruction: str,
    agent: AgentSpec,
    output: str,
    *,
    revision: bool = False,
) -> ModelRequest:
    heading = f"Their output ({REVISED})" if revision else "Their output"
    prompt = (
        f"# The campaign\n{campaign_text}\n\n# The task given to {agent.code} ({agent.name})\n"
        f"{instruction}\n\n# {heading}\n{output[:_OUTPUT_CHARS]}\n\n# Your review\n"
        "Approve the output when it does the task well enough to build the brief on; "
        "otherwise reject it and give the reasons the agent must answer in a revision."
    )
    return ModelRequest(
        system=lord.system_prompt,
        messages=(ChatMessage("user", prompt),),
        tier=Tier.FAST,
        temperature=0.0,
        max_tokens=600,
        json_schema=REVIEW_SCHEMA,
    )


def campaign_facts(campaign: Campaign) -> dict[str, Any]:
    """What the brief's steps know of the campaign (kept in the run's context)."""
    return {
        "name": campaign.name,
        "objective_type": campaign.objective_type.value,
        "positioning": dict(campaign.positioning),
        "target_cohorts": list(campaign.target_cohorts),
    }


def brief_default(
    facts: Mapping[str, Any], handoffs: Sequence[Handoff], guild_of: Mapping[str, str]
) -> dict[str, str]:
    """A brief made of the guilds' outputs (what the offline provider answers); `facts`
    from `campaign_facts`, `guild_of`: agent code → guild."""
    by_guild: dict[str, list[str]] = {}
    for h in handoffs:
        guild = guild_of.get(h.agent_code, "")
        by_guild.setdefault(guild, []).append(f"{h.agent_code}: {h.content.strip()}"[:800])

    def of(*guilds: str) -> str:
        found = [line for g in guilds for line in by_guild.get(g, [])]
        return ("\n".join(found) or "No guild output.")[:SECTION_CHARS]

    objective = facts.get("objective_type", "")
    positioning = "; ".join(f"{k}: {v}" for k, v in dict(facts.get("positioning", {})).items() if v)
    return {
        "situation": f"{facts.get('name', 'The campaign')}: a {objective} campaign.",
        "audience": ", ".join(facts.get("target_cohorts", ())) or "No cohorts set.",
        "competitors": of("research", "matrix"),
        "positioning": positioning or of("muse"),
        "messages": of("muse"),
        "channels": of("muse"),
        "risks_compliance": of("guardian"),
        "kpis": f"Measures of {objective} agreed before launch.",
    }


def brief_schema(default: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            s: {"type": "string", "minLength": 1, "maxLength": SECTION_CHARS}
            for s in BRIEF_SECTIONS
        },
        "required": list(BRIEF_SECTIONS),
        "additionalProperties": False,
        "default": dict(default),
    }


def brief_request(
    herald: AgentSpec,
    facts: Mapping[str, Any],
    campaign_text: str,
    handoffs: Sequence[Handoff],
    guild_of: Mapping[str, str],
) -> ModelRequest:
    parts = [f"# The campaign\n{campaign_text}"]
    for h in handoffs:
        parts.append(f"# From `{h.step_key}` ({h.agent_code})\n{h.content[:_OUTPUT_CHARS]}")
    parts.append(
        "# Your task\nWrite the campaign's intelligence brief from the guilds' approved "
        "work, one section each: situation, audience, competitors, positioning, messages, "
        "channels, risks_compliance, kpis. Plain prose, no headings inside sections."
    )
    return ModelRequest(
        system=herald.system_prompt,
        messages=(ChatMessage("user", "\n\n".join(parts)),),
        tier=herald.model_tier,
        temperature=0.3,
        max_tokens=3000,
        json_schema=brief_schema(brief_default(facts, handoffs, guild_of)),
    )


__all__ = [
    "COUNCIL_SHARE",
    "HERALD",
    "PLANNER",
    "PLAN_GUILDS",
    "REVIEWERS",
    "REVIEW_SCHEMA",
    "TREASURER",
    "baseline_plan",
    "brief_default",
    "brief_request",
    "brief_schema",
    "campaign_facts",
    "plan_request",
    "plan_schema",
    "review_request",
    "task_request",
]
