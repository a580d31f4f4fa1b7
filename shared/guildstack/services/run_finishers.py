"""What happens when a chat turn's, a discussion's or a campaign brief's run ends, in the
transaction that ended it (`RunFinishers`, registered with every function's unit of work).

Kept apart from the rest of chat and discussions so that registering them imports none of
their machinery (routing, prompts, specialists, personas).
"""

from __future__ import annotations

import json
from dataclasses import replace
from uuid import UUID

from guildstack.domain.campaigns import BRIEF_SECTIONS, BRIEF_STEP, HERALD, Decision, DecisionKind
from guildstack.domain.conversations import (
    ConversationEvent,
    ConversationEventType,
    ConversationStatus,
    MessageType,
    NewMessage,
    SenderKind,
    status_changed,
)
from guildstack.domain.jobs import JobMessage
from guildstack.domain.memory import Collection
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.vocabulary import RunStatus
from guildstack.ports.uow import Tx


class ChatFinisher:
    """When a chat turn's run ends: its reply joins the conversation (with the routing and
    the usage), or a failure is recorded there; a good exchange is queued to be remembered
    in the user's core memories. Runs in the transaction that ended the run."""

    async def finished(self, tx: Tx, graph: RunGraph) -> None:
        run, ctx = graph.run, graph.run.context
        conversation_id = UUID(ctx["conversation_id"])
        asked = UUID(ctx["message_id"])
        step = next(iter(graph.steps.values()))
        if run.status is RunStatus.SUCCEEDED and run.output:
            usage = {
                "provider": step.provider,
                "model": step.model,
                "input_tokens": step.input_tokens,
                "output_tokens": step.output_tokens,
                "cost_usd": float(step.cost_usd),
            }
            reply = NewMessage(
                SenderKind.AGENT,
                step.agent_code,
                MessageType.CHAT,
                run.output,
                reply_to=asked,
                routing=ctx.get("routing"),
                usage=usage,
                metadata={"run_id": str(run.id), "memory_hits": ctx.get("memory_hits", [])},
            )
            await tx.conversations.append(
                run.workspace_id,
                conversation_id,
                [reply],
                [
                    reply.announced(),
                    ConversationEvent(
                        ConversationEventType.AGENT_RESPONSE_COMPLETE,
                        {"agent": step.agent_code, "run_id": str(run.id), "usage": usage},
                    ),
                ],
            )
            if run.created_by is not None:
                document = await tx.documents.create(
                    run.workspace_id,
                    f"Chat exchange {run.created_at:%Y-%m-%d %H:%M}",
                    f"The user said: {run.input}\n\nThe assistant answered: {run.output}",
                    owner_id=run.created_by,
                    collection=Collection.CORE,
                )
                tx.send(JobMessage.document(run.workspace_id, document.id))
            return
        await tx.conversations.append(
            run.workspace_id,
            conversation_id,
            events=[
                ConversationEvent(
                    ConversationEventType.TURN_FAILED,
                    {"run_id": str(run.id), "status": run.status.value, "error": run.error},
                )
            ],
        )


class DiscussionFinisher:
    """A discussion whose run ended without its conclusion (it failed, or was cancelled)
    completes with a summary saying why."""

    async def finished(self, tx: Tx, graph: RunGraph) -> None:
        run = graph.run
        conversation_id = UUID(run.context["conversation_id"])
        conversation = await tx.conversations.get(run.workspace_id, conversation_id)
        if conversation.status is ConversationStatus.COMPLETED or conversation.run_id != run.id:
            return
        cancelled = run.status is RunStatus.CANCELLED
        why = "it was cancelled" if cancelled else (run.error or "it failed")
        summary = f"The discussion ended before a conclusion: {why}."
        changed = replace(
            conversation,
            status=ConversationStatus.COMPLETED,
            final_summary=summary,
            result={"reason": why, "consensus": False, "run_status": run.status.value},
        )
        note = NewMessage(SenderKind.SYSTEM, "discussion", MessageType.SUMMARY, summary)
        await tx.conversations.append(
            run.workspace_id,
            conversation_id,
            [note],
            [note.announced(), status_changed(conversation.status, changed.status)],
        )
        await tx.conversations.save(changed)


class BriefFinisher:
    """When a campaign brief's run succeeds, the Herald's sections land in the campaign
    (with the run that wrote them) and in the workspace's `campaign_briefs` memories (queued
    as a document), and the council records it. A run that failed or was cancelled leaves
    the campaign's brief as it was (its decisions say why)."""

    async def finished(self, tx: Tx, graph: RunGraph) -> None:
        run = graph.run
        step = graph.steps.get(BRIEF_STEP)
        if run.status is not RunStatus.SUCCEEDED or step is None or not step.output:
            return
        campaign_id = UUID(run.context["campaign_id"])
        campaign = await tx.campaigns.get(run.workspace_id, campaign_id, lock=True)
        if campaign.brief_run_id != run.id:
            return  # a newer brief was started since
        value = json.loads(step.output)
        sections = {name: str(value.get(name, "")) for name in BRIEF_SECTIONS}
        brief = {"sections": sections, "run_id": str(run.id), "generated_at": tx.now.isoformat()}
        await tx.campaigns.save(replace(campaign, brief=brief, updated_at=tx.now), system=True)
        await tx.campaigns.record(
            run.workspace_id,
            [
                Decision(
                    campaign_id,
                    DecisionKind.BRIEF,
                    step.agent_code or HERALD,
                    f"The brief of {campaign.name} landed ({len(sections)} sections).",
                    {"sections": list(sections)},
                    run_id=run.id,
                    step_key=BRIEF_STEP,
                )
            ],
        )
        if run.created_by is not None:
            text = "\n\n".join(
                f"## {name.replace('_', ' ').title()}\n{body}" for name, body in sections.items()
            )
            document = await tx.documents.create(
                run.workspace_id,
                f"Campaign brief: {campaign.name}"[:200],
                text,
                owner_id=run.created_by,
                collection=Collection.CAMPAIGN_BRIEFS,
            )
            tx.send(JobMessage.document(run.workspace_id, document.id))
