-- Memory: remembered items found by meaning (pgvector) and by words (full text), and the
-- documents whose chunks are memories of the `documents` collection.
-- User-scope rows are their owner's alone; workspace-scope rows belong to every member.

create extension if not exists vector with schema extensions;

create table if not exists public.documents (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    owner_id uuid not null references auth.users (id) on delete cascade,
    title text not null check (char_length(title) between 1 and 300),
    status text not null default 'pending' check (status in ('pending', 'processing', 'ready', 'failed')),
    chunk_count integer not null default 0,
    -- The text, held until a worker has chunked and embedded it.
    body text check (char_length(body) <= 500000),
    error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index if not exists documents_owner_idx on public.documents (workspace_id, owner_id, created_at);

create table if not exists public.memories (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    scope text not null check (scope in ('user', 'workspace')),
    -- The user a user-scope memory belongs to; null for workspace-shared memories.
    owner_id uuid references auth.users (id) on delete cascade,
    collection text not null check (
        collection in ('core', 'documents', 'business', 'design_guidelines', 'codex_knowledge',
                       'campaign_briefs', 'competitor_intel', 'industry_research',
                       'user_preferences')
    ),
    content text not null check (char_length(content) between 1 and 8000),
    metadata jsonb not null default '{}',
    embedding extensions.vector(384) not null,
    embedding_model text not null,
    content_tsv tsvector generated always as (to_tsvector('english', content)) stored,
    confidence real not null default 1 check (confidence between 0 and 1),
    feedback_score integer not null default 0,
    access_count integer not null default 0,
    last_accessed_at timestamptz,
    document_id uuid references public.documents (id) on delete cascade,
    chunk_index integer,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    check ((scope = 'user') = (owner_id is not null))
);

create index if not exists memories_embedding_idx on public.memories
    using hnsw (embedding extensions.vector_cosine_ops) with (m = 16, ef_construction = 64);
create index if not exists memories_tsv_idx on public.memories using gin (content_tsv);
create index if not exists memories_listing_idx
    on public.memories (workspace_id, collection, created_at desc);

-- RLS ---------------------------------------------------------------------------------------

alter table public.memories enable row level security;
alter table public.memories force row level security;
alter table public.documents enable row level security;
alter table public.documents force row level security;

-- The caller's workspaces (at a minimum role), once per statement: a policy written as
-- `workspace_id in (select ...)` becomes one hashed subplan instead of a membership query
-- per row, which matters when a search weighs thousands of candidate rows.
create or replace function private.member_workspace_ids(p_min_role text)
returns setof uuid
language sql stable security definer set search_path = '' as $$
    select m.workspace_id from public.workspace_members m
    where m.user_id = (select auth.uid())
      and private.role_rank(m.role) >= private.role_rank(p_min_role)
$$;
revoke all on function private.member_workspace_ids(text) from public;
grant execute on function private.member_workspace_ids(text) to authenticated, service_role;

drop policy if exists memories_select on public.memories;
create policy memories_select on public.memories
    for select to authenticated
    using (
        workspace_id in (select private.member_workspace_ids('viewer'))
        and (scope = 'workspace' or owner_id = (select auth.uid()))
    );

-- Members remember things for themselves; operators and up write to the shared memory.
drop policy if exists memories_insert on public.memories;
create policy memories_insert on public.memories
    for insert to authenticated
    with check (
        (scope = 'user' and owner_id = auth.uid()
            and private.has_workspace_role(workspace_id, 'viewer'))
        or (scope = 'workspace' and private.has_workspace_role(workspace_id, 'operator'))
    );

-- Feedback and access counts (the only columns granted for update) by anyone who sees it.
drop policy if exists memories_update on public.memories;
create policy memories_update on public.memories
    for update to authenticated
    using (
        workspace_id in (select private.member_workspace_ids('viewer'))
        and (scope = 'workspace' or owner_id = (select auth.uid()))
    )
    with check (
        workspace_id in (select private.member_workspace_ids('viewer'))
        and (scope = 'workspace' or owner_id = (select auth.uid()))
    );

drop policy if exists memories_delete on public.memories;
create policy memories_delete on public.memories
    for delete to authenticated
    using (
        (scope = 'user' and owner_id = auth.uid())
        or (scope = 'workspace' and private.has_workspace_role(workspace_id, 'operator'))
    );

drop policy if exists documents_select on public.documents;
create policy documents_select on public.documents
    for select to authenticated
    using (owner_id = auth.uid() and private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists documents_insert on public.documents;
create policy documents_insert on public.documents
    for insert to authenticated
    with check (owner_id = auth.uid() and private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists documents_delete on public.documents;
create policy documents_delete on public.documents
    for delete to authenticated
    using (owner_id = auth.uid());

-- Full-text candidates. `@@` is not leakproof, so under row security Postgres may not use
-- it as an index condition and would re-check every row of the workspace instead of asking
-- the GIN index. This function (owner's rights) asks the index and applies the same
-- visibility rule as memories_select itself; callers then read the rows under RLS.
create or replace function private.memory_text_candidates(
    p_workspace_id uuid, p_model text, p_collections text[], p_query text, p_limit int
) returns setof uuid
language sql stable security definer set search_path = '' as $$
    select m.id
    from public.memories m
    where m.content_tsv @@ websearch_to_tsquery('english', p_query)
      and m.workspace_id = p_workspace_id
      and m.embedding_model = p_model
      and (p_collections is null or m.collection = any(p_collections))
      and private.has_workspace_role(p_workspace_id, 'viewer')
      and (m.scope = 'workspace' or m.owner_id = (select auth.uid()))
    order by ts_rank_cd(m.content_tsv, websearch_to_tsquery('english', p_query)) desc
    limit least(greatest(p_limit, 0), 1000)
$$;
revoke all on function private.memory_text_candidates(uuid, text, text[], text, int) from public;
grant execute on function private.memory_text_candidates(uuid, text, text[], text, int)
    to authenticated, service_role;

revoke all on public.memories, public.documents from anon, public;
grant select, insert, delete on public.memories to authenticated;
grant update (feedback_score, access_count, last_accessed_at) on public.memories to authenticated;
grant select, insert, delete on public.documents to authenticated;
grant all on public.memories, public.documents to service_role;
