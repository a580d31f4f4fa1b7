-- Chat: conversations (chats and team discussions), their numbered messages and their event
-- log. A conversation is its creator's unless shared with the workspace; tenants never see
-- each other's. Analysts and up chat; the engine (service role) writes the agents' replies.

-- A member's account kind in a workspace (the personal assistant's users: admin, parent,
-- child, standard): set by the workspace's admins, it shapes the assistant's answers and
-- its daily and weekly limits.
alter table public.workspace_members add column if not exists account_kind text not null
    default 'standard' check (account_kind in ('admin', 'parent', 'child', 'standard'));

-- An ingestion job names the collection its chunks go to: `documents` for uploads, `core`
-- for a chat exchange the assistant should remember.
alter table public.documents add column if not exists collection text not null
    default 'documents' check (
        collection in ('core', 'documents', 'business', 'design_guidelines', 'codex_knowledge',
                       'campaign_briefs', 'competitor_intel', 'industry_research',
                       'user_preferences')
    );

create table if not exists public.conversations (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    created_by uuid references auth.users (id) on delete set null,
    title text not null check (char_length(title) between 1 and 200),
    goal text check (char_length(goal) <= 4000),
    mode text not null default 'chat' check (mode in ('chat', 'discussion')),
    status text not null default 'active' check (status in ('active', 'paused', 'completed')),
    shared boolean not null default false,
    agents text[] not null default '{}',
    settings jsonb not null default '{}',
    final_summary text,
    run_id uuid references public.runs (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Messages and events are numbered per conversation by this row, apart from the
-- conversation itself: every participant appends (and so takes the counter's lock), while
-- only the creator (or an admin, for a shared one) may change the conversation.
create table if not exists public.conversation_counters (
    conversation_id uuid primary key references public.conversations (id) on delete cascade,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    last_message_seq integer not null default 0 check (last_message_seq >= 0),
    last_event_seq integer not null default 0 check (last_event_seq >= 0),
    last_message_at timestamptz
);

create index if not exists conversations_workspace_idx
    on public.conversations (workspace_id, created_at desc, id desc);

create table if not exists public.messages (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    conversation_id uuid not null references public.conversations (id) on delete cascade,
    seq integer not null,
    sender_kind text not null check (sender_kind in ('user', 'agent', 'system')),
    sender_id text not null check (char_length(sender_id) between 1 and 64),
    type text not null check (type in ('chat', 'discussion', 'proposal', 'vote',
                                       'question_to_user', 'user_response', 'summary')),
    content text not null check (char_length(content) between 1 and 100000),
    reply_to uuid references public.messages (id) on delete set null,
    requires_user_response boolean not null default false,
    routing jsonb,
    usage jsonb,
    metadata jsonb not null default '{}',
    content_tsv tsvector generated always as (to_tsvector('english', content)) stored,
    created_at timestamptz not null default now(),
    unique (conversation_id, seq)
);

create index if not exists messages_tsv_idx on public.messages using gin (content_tsv);
-- Daily limits count a member's own messages.
create index if not exists messages_sender_idx
    on public.messages (workspace_id, sender_id, created_at) where sender_kind = 'user';

create table if not exists public.conversation_events (
    id bigint generated always as identity primary key,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    conversation_id uuid not null references public.conversations (id) on delete cascade,
    seq integer not null,
    type text not null check (type ~ '^[a-z]+\.[a-z_.]+$'),
    payload jsonb not null default '{}',
    created_at timestamptz not null default now(),
    unique (conversation_id, seq)
);

-- RLS ---------------------------------------------------------------------------------------

alter table public.conversations enable row level security;
alter table public.conversations force row level security;
alter table public.messages enable row level security;
alter table public.messages force row level security;
alter table public.conversation_events enable row level security;
alter table public.conversation_events force row level security;
alter table public.conversation_counters enable row level security;
alter table public.conversation_counters force row level security;

-- Whether the caller may see a conversation (a member, and its creator unless shared). Owner's
-- rights, so the messages' and events' policies need not repeat the conversations' rule.
create or replace function private.can_see_conversation(p_conversation_id uuid)
returns boolean
language sql stable security definer set search_path = '' as $$
    select exists (
        select 1 from public.conversations c
        where c.id = p_conversation_id
          and private.has_workspace_role(c.workspace_id, 'viewer')
          and (c.shared or c.created_by = (select auth.uid()))
    )
$$;
revoke all on function private.can_see_conversation(uuid) from public;
grant execute on function private.can_see_conversation(uuid) to authenticated, service_role;

drop policy if exists conversations_select on public.conversations;
create policy conversations_select on public.conversations
    for select to authenticated
    using (
        private.has_workspace_role(workspace_id, 'viewer')
        and (shared or created_by = (select auth.uid()))
    );

drop policy if exists conversations_insert on public.conversations;
create policy conversations_insert on public.conversations
    for insert to authenticated
    with check (
        created_by = (select auth.uid()) and private.has_workspace_role(workspace_id, 'analyst')
    );

-- The creator changes their conversation; an admin may change (or delete) a shared one.
drop policy if exists conversations_update on public.conversations;
create policy conversations_update on public.conversations
    for update to authenticated
    using (
        (created_by = (select auth.uid()) and private.has_workspace_role(workspace_id, 'analyst'))
        or (shared and private.has_workspace_role(workspace_id, 'admin'))
    )
    with check (
        (created_by = (select auth.uid()) and private.has_workspace_role(workspace_id, 'analyst'))
        or (shared and private.has_workspace_role(workspace_id, 'admin'))
    );

drop policy if exists conversations_delete on public.conversations;
create policy conversations_delete on public.conversations
    for delete to authenticated
    using (
        (created_by = (select auth.uid()) and private.has_workspace_role(workspace_id, 'analyst'))
        or (shared and private.has_workspace_role(workspace_id, 'admin'))
    );

drop policy if exists messages_select on public.messages;
create policy messages_select on public.messages
    for select to authenticated
    using (private.can_see_conversation(conversation_id));

-- Members write their own messages only; agents' and the system's come from the engine.
drop policy if exists messages_insert on public.messages;
create policy messages_insert on public.messages
    for insert to authenticated
    with check (
        sender_kind = 'user' and sender_id = (select auth.uid())::text
        and private.has_workspace_role(workspace_id, 'analyst')
        and private.can_see_conversation(conversation_id)
    );

drop policy if exists conversation_counters_select on public.conversation_counters;
create policy conversation_counters_select on public.conversation_counters
    for select to authenticated
    using (private.can_see_conversation(conversation_id));

drop policy if exists conversation_counters_insert on public.conversation_counters;
create policy conversation_counters_insert on public.conversation_counters
    for insert to authenticated
    with check (
        private.has_workspace_role(workspace_id, 'analyst')
        and private.can_see_conversation(conversation_id)
    );

drop policy if exists conversation_counters_update on public.conversation_counters;
create policy conversation_counters_update on public.conversation_counters
    for update to authenticated
    using (
        private.has_workspace_role(workspace_id, 'analyst')
        and private.can_see_conversation(conversation_id)
    )
    with check (
        private.has_workspace_role(workspace_id, 'analyst')
        and private.can_see_conversation(conversation_id)
    );

drop policy if exists conversation_events_select on public.conversation_events;
create policy conversation_events_select on public.conversation_events
    for select to authenticated
    using (private.can_see_conversation(conversation_id));

drop policy if exists conversation_events_insert on public.conversation_events;
create policy conversation_events_insert on public.conversation_events
    for insert to authenticated
    with check (
        private.has_workspace_role(workspace_id, 'analyst')
        and private.can_see_conversation(conversation_id)
    );

-- A conversation's rows always belong to its workspace.
create or replace function private.check_conversation_workspace() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if not exists (
        select 1 from public.conversations c
        where c.id = new.conversation_id and c.workspace_id = new.workspace_id
    ) then
        raise exception using errcode = '23503',
            message = 'conversation belongs to another workspace';
    end if;
    return new;
end
$$;
revoke all on function private.check_conversation_workspace() from public;

do $$
declare
    t text;
begin
    foreach t in array array['messages', 'conversation_events', 'conversation_counters'] loop
        execute format('drop trigger if exists %1$s_conversation_workspace on public.%1$s', t);
        execute format(
            'create trigger %1$s_conversation_workspace before insert or update of'
            ' conversation_id, workspace_id on public.%1$s for each row'
            ' execute function private.check_conversation_workspace()', t);
    end loop;
end
$$;

revoke all on public.conversations, public.messages, public.conversation_events,
    public.conversation_counters from anon, public;
grant select, insert, delete on public.conversations to authenticated;
grant update (title, status, shared, settings, final_summary, updated_at, run_id)
    on public.conversations to authenticated;
grant select, insert on public.messages, public.conversation_events to authenticated;
grant select, insert on public.conversation_counters to authenticated;
grant update (last_message_seq, last_event_seq, last_message_at)
    on public.conversation_counters to authenticated;
grant all on public.conversations, public.messages, public.conversation_events,
    public.conversation_counters to service_role;

-- Where the caller stands before sending a chat message, in one read: their role and account
-- kind in the workspace, how many messages (and image prompts) they sent since the day's and
-- the week's start, and the workspace's budget left this month (null: no budget; money set
-- aside for calls in flight is the system's bookkeeping, checked again when a call is
-- reserved). Only the caller's own rows; no row for a non-member. (A definer function:
-- counting one's own messages needs no per-row visibility check.)
create or replace function public.chat_standing(
    p_workspace_id uuid, p_day timestamptz, p_week timestamptz
)
returns table (
    role text, account_kind text, sent_today integer, images_this_week integer,
    budget_left numeric
)
language sql stable security definer set search_path = '' as $$
    select m.role, m.account_kind,
        (select count(*)::integer from public.messages x
         where x.workspace_id = m.workspace_id and x.sender_kind = 'user'
           and x.sender_id = m.user_id::text and x.created_at >= p_day),
        (select count(*)::integer from public.messages x
         where x.workspace_id = m.workspace_id and x.sender_kind = 'user'
           and x.sender_id = m.user_id::text and x.created_at >= p_week
           and x.metadata @> '{"image_prompt": true}'),
        w.monthly_budget_usd - coalesce((
            select s.spent_usd from public.workspace_spend s
            where s.workspace_id = w.id
              and s.month = date_trunc('month', now() at time zone 'utc')::date), 0)
    from public.workspace_members m
    join public.workspaces w on w.id = m.workspace_id
    where m.workspace_id = p_workspace_id and m.user_id = (select auth.uid())
$$;
revoke all on function public.chat_standing(uuid, timestamptz, timestamptz) from public, anon;
grant execute on function public.chat_standing(uuid, timestamptz, timestamptz)
    to authenticated, service_role;
