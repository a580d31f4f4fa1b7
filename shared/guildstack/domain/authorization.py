"""Who may do what in a workspace: one table from action to the lowest role allowed.

Services call `authorize` inside the unit of work that performs the action, after reading
the caller's membership in that same transaction. Row-level security enforces the same
minimums again (defence in depth); a test keeps the policies and this table in agreement.
"""

from __future__ import annotations

from enum import StrEnum

from guildstack.domain.errors import Forbidden, NotFound
from guildstack.domain.vocabulary import Role

__all__ = ["MINIMUM_ROLE", "NOT_A_MEMBER", "Action", "authorize", "require_member"]


class Action(StrEnum):
    VIEW = "view"  # read the workspace's agents, runs, events, approvals, questions
    LEAVE = "leave"  # take oneself out of a workspace
    REMEMBER = "remember"  # memories and documents of one's own
    READ_USAGE = "read_usage"
    CHAT = "chat"  # start conversations, post messages, get replies (model calls)
    SHARE_MEMORY = "share_memory"  # write or delete workspace-wide memories
    RUN = "run"  # start runs, invoke agents
    STEER_RUN = "steer_run"  # cancel runs, retry steps
    DECIDE_APPROVAL = "decide_approval"
    ANSWER_QUESTION = "answer_question"
    MANAGE_AGENTS = "manage_agents"
    MODERATE_CONVERSATIONS = "moderate_conversations"  # change or delete others' shared ones
    SET_ACCOUNT_KIND = "set_account_kind"  # a member's account kind (child, parent, ...)
    UPDATE_WORKSPACE = "update_workspace"  # name, budget
    MANAGE_MEMBERS = "manage_members"
    READ_AUDITS = "read_audits"  # the self-audit's findings about the workspace
    GRANT_OWNER = "grant_owner"  # give, take away or remove the owner role
    DRAFT_CAMPAIGN = "draft_campaign"  # create campaigns and quests, edit a planning one
    STEER_CAMPAIGN = "steer_campaign"  # approve, start, pause, complete; generate briefs
    DELETE_CAMPAIGN = "delete_campaign"


MINIMUM_ROLE: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.LEAVE: Role.VIEWER,
    Action.REMEMBER: Role.VIEWER,
    Action.READ_USAGE: Role.ANALYST,
    Action.CHAT: Role.ANALYST,
    Action.SHARE_MEMORY: Role.OPERATOR,
    Action.RUN: Role.OPERATOR,
    Action.STEER_RUN: Role.OPERATOR,
    Action.DECIDE_APPROVAL: Role.OPERATOR,
    Action.ANSWER_QUESTION: Role.OPERATOR,
    Action.MANAGE_AGENTS: Role.ADMIN,
    Action.MODERATE_CONVERSATIONS: Role.ADMIN,
    Action.SET_ACCOUNT_KIND: Role.ADMIN,
    Action.UPDATE_WORKSPACE: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
    Action.READ_AUDITS: Role.ADMIN,
    Action.GRANT_OWNER: Role.OWNER,
    Action.DRAFT_CAMPAIGN: Role.ANALYST,
    Action.STEER_CAMPAIGN: Role.OPERATOR,
    Action.DELETE_CAMPAIGN: Role.ADMIN,
}

NOT_A_MEMBER = "No such workspace."


def require_member(role: Role | None) -> Role:
    """The caller's role; `NotFound` for a non-member, so a workspace's existence is never
    revealed to outsiders."""
    if role is None:
        raise NotFound(NOT_A_MEMBER)
    return role


def authorize(role: Role | None, action: Action) -> Role:
    """The caller's role when it may perform `action`: `NotFound` for non-members,
    `Forbidden` (naming the role needed) for members whose role is too low."""
    role = require_member(role)
    needed = MINIMUM_ROLE[action]
    if not role.at_least(needed):
        raise Forbidden(f"This needs the {needed.value} role or higher; you are {role.value}.")
    return role
