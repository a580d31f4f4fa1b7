"""The domain's authorization table and the database's policies say the same thing.

Services refuse an action with a clear 403 using `MINIMUM_ROLE`; row-level security refuses
it again (defence in depth). Each workspace-scoped policy names its minimum role through
`private.has_workspace_role(…, '<role>')` or `private.member_workspace_ids('<role>')`; this
reads every policy from the catalog and checks the roles it names are exactly the minimums
of the actions that write (or read) that table. A new policy or action that disagrees
fails here.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from guildstack.domain.authorization import MINIMUM_ROLE, Action
from guildstack.domain.vocabulary import Role

pytestmark = pytest.mark.integration

A = Action
# (table, command) → the actions whose rows that policy admits. Reads of workspace data are
# VIEW unless the table is money (usage, spend: analysts and up).
POLICY_ACTIONS: dict[tuple[str, str], set[Action]] = {
    ("workspaces", "SELECT"): {A.VIEW},
    ("workspaces", "UPDATE"): {A.UPDATE_WORKSPACE},
    ("workspaces", "DELETE"): {A.GRANT_OWNER},
    ("workspace_members", "SELECT"): {A.VIEW},
    ("workspace_members", "INSERT"): {A.MANAGE_MEMBERS, A.GRANT_OWNER},
    ("workspace_members", "UPDATE"): {A.MANAGE_MEMBERS, A.GRANT_OWNER},
    ("workspace_members", "DELETE"): {A.MANAGE_MEMBERS, A.GRANT_OWNER},
    ("member_invites", "SELECT"): {A.MANAGE_MEMBERS},
    ("agents", "SELECT"): {A.VIEW},
    ("agents", "INSERT"): {A.MANAGE_AGENTS},
    ("agents", "UPDATE"): {A.MANAGE_AGENTS},
    ("usage", "SELECT"): {A.READ_USAGE},
    ("workspace_spend", "SELECT"): {A.READ_USAGE},
    ("memories", "SELECT"): {A.VIEW},
    ("memories", "INSERT"): {A.REMEMBER, A.SHARE_MEMORY},
    ("memories", "DELETE"): {A.SHARE_MEMORY},
    ("memory_votes", "SELECT"): {A.VIEW},
    ("documents", "SELECT"): {A.VIEW},
    ("documents", "INSERT"): {A.REMEMBER},
    **{(t, "SELECT"): {A.VIEW} for t in (
        "runs", "steps", "handoffs", "approvals", "questions", "events", "event_counters")},
    ("runs", "INSERT"): {A.RUN},
    ("runs", "UPDATE"): {A.STEER_RUN},
    ("steps", "INSERT"): {A.RUN},
    ("steps", "UPDATE"): {A.STEER_RUN, A.DECIDE_APPROVAL, A.ANSWER_QUESTION},
    ("approvals", "INSERT"): {A.STEER_RUN},
    ("approvals", "UPDATE"): {A.DECIDE_APPROVAL},
    ("questions", "INSERT"): {A.RUN},
    ("questions", "UPDATE"): {A.ANSWER_QUESTION},
    ("events", "INSERT"): {A.RUN, A.STEER_RUN, A.DECIDE_APPROVAL, A.ANSWER_QUESTION},
    ("event_counters", "INSERT"): {A.RUN},
    ("event_counters", "UPDATE"): {A.RUN, A.STEER_RUN, A.DECIDE_APPROVAL, A.ANSWER_QUESTION},
    ("conversations", "SELECT"): {A.VIEW},
    ("conversations", "INSERT"): {A.CHAT},
    ("conversations", "UPDATE"): {A.CHAT, A.MODERATE_CONVERSATIONS},
    ("conversations", "DELETE"): {A.CHAT, A.MODERATE_CONVERSATIONS},
    ("messages", "INSERT"): {A.CHAT},
    ("conversation_events", "INSERT"): {A.CHAT},
    ("conversation_counters", "INSERT"): {A.CHAT},
    ("conversation_counters", "UPDATE"): {A.CHAT},
    **{(t, "SELECT"): {A.VIEW} for t in ("tool_settings", "agent_tools", "mcp_servers")},
    ("tool_settings", "INSERT"): {A.MANAGE_AGENTS},
    ("tool_settings", "UPDATE"): {A.MANAGE_AGENTS},
    ("agent_tools", "INSERT"): {A.MANAGE_AGENTS},
    ("agent_tools", "UPDATE"): {A.MANAGE_AGENTS},
    ("mcp_servers", "INSERT"): {A.MANAGE_AGENTS},
    ("mcp_servers", "DELETE"): {A.MANAGE_AGENTS},
    ("audits", "SELECT"): {A.READ_AUDITS},
    ("campaigns", "SELECT"): {A.VIEW},
    ("campaigns", "INSERT"): {A.DRAFT_CAMPAIGN},
    ("campaigns", "UPDATE"): {A.DRAFT_CAMPAIGN, A.STEER_CAMPAIGN},
    ("campaigns", "DELETE"): {A.DELETE_CAMPAIGN},
    ("campaign_quests", "SELECT"): {A.VIEW},
    ("campaign_quests", "INSERT"): {A.DRAFT_CAMPAIGN},
    ("campaign_quests", "UPDATE"): {A.DRAFT_CAMPAIGN},
    ("campaign_decisions", "SELECT"): {A.VIEW},
}  # fmt: skip
ROLE_IN_POLICY = re.compile(
    r"(?:has_workspace_role\([^,]+,\s*'(\w+)'(?:::text)?\)|member_workspace_ids\('(\w+)'(?:::text)?\))"
)
# Tables whose policies are not about workspace roles (a user's own rows, or none at all).
NOT_ROLE_BASED = frozenset({"profiles", "budget_reservations"})


def _policy_roles(database_url: str) -> dict[tuple[str, str], set[Role]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select tablename, cmd, coalesce(qual, '') || ' ' || coalesce(with_check, '')"
            " from pg_policies where schemaname = 'public'"
        ).fetchall()
    found: dict[tuple[str, str], set[Role]] = {}
    for table, cmd, text in rows:
        roles = {Role(a or b) for a, b in ROLE_IN_POLICY.findall(text)}
        if roles:
            found.setdefault((table, cmd), set()).update(roles)
    return found


def test_given_every_policy_then_its_roles_are_the_minimums_of_its_actions(
    database_url: str,
) -> None:
    in_sql = _policy_roles(database_url)
    expected = {
        key: {MINIMUM_ROLE[action] for action in actions} for key, actions in POLICY_ACTIONS.items()
    }
    assert in_sql == expected


def test_given_the_schema_then_every_role_based_table_is_in_the_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select tablename from pg_tables where schemaname = 'public'"
            ).fetchall()
        }
    covered = {table for table, _ in POLICY_ACTIONS}
    assert tables - covered - NOT_ROLE_BASED == set()


def test_given_the_role_ranking_in_sql_then_it_matches_the_domain(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("set role service_role")
        ranks = {
            role: conn.execute("select private.role_rank(%s)", (role.value,)).fetchone()
            for role in Role
        }
    assert {role: row[0] for role, row in ranks.items() if row} == {r: r.rank for r in Role}
