-- Agents per workspace, the model-usage ledger and budget reservations.

-- Agents: custom agents and a workspace's changes to built-in (catalog) ones --------------

create table if not exists public.agents (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    code text not null check (code ~ '^[A-Za-z][A-Za-z0-9_-]{1,63}$'),
    source text not null check (source in ('catalog', 'custom')),
    name text not null check (char_length(name) between 1 and 80),
    role text not null check (role ~ '^[a-z][a-z0-9_]{1,31}$'),
    guild text not null check (
        guild in ('council', 'research', 'muse', 'matrix', 'guardian', 'core', 'delivery',
                  'discussion')
    ),
    description text not null check (char_length(description) between 1 and 2000),
    system_prompt text not null check (char_length(system_prompt) between 1 and 20000),
    model_tier text not null check (model_tier in ('fast', 'standard', 'strong')),
    temperature real not null check (temperature between 0 and 2),
    max_tokens integer not null check (max_tokens between 1 and 64000),
    capabilities text[] not null default '{}',
    status text not null default 'idle' check (
        status in ('spawning', 'idle', 'working', 'paused', 'error', 'terminated')
    ),
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (workspace_id, code)
);

-- Usage: one row per completed model call -------------------------------------------------

create table if not exists public.usage (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    user_id uuid references auth.users (id) on delete set null,
    agent_code text,
    run_id uuid,
    step_key text,
    provider text not null,
    model text not null,
    tier text check (tier in ('fast', 'standard', 'strong')),
    requested_tier text check (requested_tier in ('fast', 'standard', 'strong')),
    input_tokens integer not null default 0 check (input_tokens >= 0),
    output_tokens integer not null default 0 check (output_tokens >= 0),
    cache_read_tokens integer not null default 0 check (cache_read_tokens >= 0),
    cache_write_tokens integer not null default 0 check (cache_write_tokens >= 0),
    cost_usd numeric(20, 10) not null default 0 check (cost_usd >= 0),
    latency_ms integer not null default 0 check (latency_ms >= 0),
    attempts integer not null default 1 check (attempts >= 1),
    status text not null default 'succeeded' check (status in ('succeeded', 'partial')),
    created_at timestamptz not null default now()
);

create index if not exists usage_workspace_created_idx on public.usage (workspace_id, created_at);
create index if not exists usage_run_idx on public.usage (run_id) where run_id is not null;

-- Spend per workspace and month: the row reservations lock, so checks are serialized -------

create table if not exists public.workspace_spend (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    month date not null check (extract(day from month) = 1),
    spent_usd numeric(20, 10) not null default 0 check (spent_usd >= 0),
    primary key (workspace_id, month)
);

create table if not exists public.budget_reservations (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    run_id uuid,
    amount_usd numeric(20, 10) not null check (amount_usd >= 0),
    expires_at timestamptz not null
);

create index if not exists budget_reservations_workspace_idx
    on public.budget_reservations (workspace_id, expires_at);

-- RLS ---------------------------------------------------------------------------------------

alter table public.agents enable row level security;
alter table public.agents force row level security;
alter table public.usage enable row level security;
alter table public.usage force row level security;
alter table public.workspace_spend enable row level security;
alter table public.workspace_spend force row level security;
alter table public.budget_reservations enable row level security;
alter table public.budget_reservations force row level security;

drop policy if exists agents_select on public.agents;
create policy agents_select on public.agents
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists agents_insert on public.agents;
create policy agents_insert on public.agents
    for insert to authenticated
    with check (private.has_workspace_role(workspace_id, 'admin'));

drop policy if exists agents_update on public.agents;
create policy agents_update on public.agents
    for update to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'))
    with check (private.has_workspace_role(workspace_id, 'admin'));

-- Usage and spend are written by the system (service role) only; analysts and up read them.
drop policy if exists usage_select on public.usage;
create policy usage_select on public.usage
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'analyst'));

drop policy if exists workspace_spend_select on public.workspace_spend;
create policy workspace_spend_select on public.workspace_spend
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'analyst'));

-- Reservations are the system's bookkeeping: nobody but the service role (which bypasses
-- RLS) touches them. The explicit deny states that intent (and there is no grant either).
drop policy if exists budget_reservations_none on public.budget_reservations;
create policy budget_reservations_none on public.budget_reservations
    for all to authenticated
    using (false)
    with check (false);

revoke all on public.agents, public.usage, public.workspace_spend, public.budget_reservations
    from anon, public;
grant select, insert, update on public.agents to authenticated;
grant select on public.usage, public.workspace_spend to authenticated;
grant all on public.agents, public.usage, public.workspace_spend, public.budget_reservations
    to service_role;
