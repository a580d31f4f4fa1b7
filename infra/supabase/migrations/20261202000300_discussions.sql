-- Team discussions: a run of kind `discussion` whose steps are its turns; the
-- conversation keeps the result (why it ended, the proposal chosen, the tallies, the
-- dissent); a workspace may keep conversations for a limited time.

alter table public.runs drop constraint if exists runs_kind_check;
alter table public.runs add constraint runs_kind_check
    check (kind in ('single', 'pipeline', 'parallel', 'dag', 'chat', 'discussion'));

alter table public.conversations add column if not exists result jsonb;

-- Conversations older than this many days are deleted by the daily retention job (null:
-- kept for good). Set by the workspace's admins.
alter table public.workspaces add column if not exists conversation_retention_days integer
    check (conversation_retention_days between 1 and 3650);

-- A member changes a conversation's title, status and sharing; its run, summary, result and
-- rules are the system's to record.
revoke update on public.conversations from authenticated;
grant update (title, status, shared, updated_at) on public.conversations to authenticated;
