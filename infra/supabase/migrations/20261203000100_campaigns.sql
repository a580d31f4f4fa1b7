-- Campaigns: a workspace's marketing campaigns (objective, positioning, cohorts, budget,
-- dates, status), their quests (ordered chapters of tasks, success metrics) and the Council
-- of Lords' decisions about them (plans, budget splits, approvals and rejections of guild
-- output, refusals, briefs landed). A campaign's brief is a run of kind `campaign_brief`;
-- a company's 12-step onboarding is a run of kind `onboarding`.

alter table public.runs drop constraint if exists runs_kind_check;
alter table public.runs add constraint runs_kind_check
    check (kind in ('single', 'pipeline', 'parallel', 'dag', 'chat', 'discussion',
        'campaign_brief', 'onboarding'));

create table if not exists public.campaigns (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    created_by uuid references auth.users (id) on delete set null,
    name text not null check (char_length(name) between 1 and 200),
    objective_type text not null check (objective_type in
        ('awareness', 'consideration', 'conversion', 'retention', 'advocacy')),
    positioning jsonb not null default '{}',
    target_cohorts jsonb not null default '[]',
    budget_usd numeric(12, 4) check (budget_usd >= 0),
    start_date date,
    end_date date,
    status text not null default 'planning'
        check (status in ('planning', 'approved', 'active', 'paused', 'completed')),
    -- The brief, section by section, and the run that wrote (or is writing) it.
    brief jsonb,
    brief_run_id uuid references public.runs (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, workspace_id),
    check (end_date is null or start_date is null or end_date >= start_date)
);
create index if not exists campaigns_workspace_idx
    on public.campaigns (workspace_id, created_at desc, id desc);

create table if not exists public.campaign_quests (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    campaign_id uuid not null,
    created_by uuid references auth.users (id) on delete set null,
    title text not null check (char_length(title) between 1 and 200),
    -- [{title, tasks: [text], done: [bool], run_id}] in order
    chapters jsonb not null default '[]',
    -- [{name, target, current}]
    success_metrics jsonb not null default '[]',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (campaign_id, workspace_id)
        references public.campaigns (id, workspace_id) on delete cascade
);
create index if not exists campaign_quests_campaign_idx
    on public.campaign_quests (campaign_id, created_at, id);

create table if not exists public.campaign_decisions (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    campaign_id uuid not null,
    run_id uuid references public.runs (id) on delete set null,
    step_key text,
    kind text not null
        check (kind in ('plan', 'budget', 'approval', 'rejection', 'refusal', 'brief')),
    lord text not null,
    summary text not null,
    detail jsonb not null default '{}',
    created_at timestamptz not null default now(),
    foreign key (campaign_id, workspace_id)
        references public.campaigns (id, workspace_id) on delete cascade
);
create index if not exists campaign_decisions_campaign_idx
    on public.campaign_decisions (campaign_id, created_at, id);

-- RLS ---------------------------------------------------------------------------------------

alter table public.campaigns enable row level security;
alter table public.campaigns force row level security;
alter table public.campaign_quests enable row level security;
alter table public.campaign_quests force row level security;
alter table public.campaign_decisions enable row level security;
alter table public.campaign_decisions force row level security;

drop policy if exists campaigns_select on public.campaigns;
create policy campaigns_select on public.campaigns
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists campaigns_insert on public.campaigns;
create policy campaigns_insert on public.campaigns
    for insert to authenticated
    with check (
        created_by = (select auth.uid()) and status = 'planning'
        and private.has_workspace_role(workspace_id, 'analyst')
    );

-- Analysts edit a campaign while it is being planned; operators and up change any and move
-- it through its statuses.
drop policy if exists campaigns_update on public.campaigns;
create policy campaigns_update on public.campaigns
    for update to authenticated
    using (
        private.has_workspace_role(workspace_id, 'operator')
        or (status = 'planning' and private.has_workspace_role(workspace_id, 'analyst'))
    )
    with check (
        private.has_workspace_role(workspace_id, 'operator')
        or (status = 'planning' and private.has_workspace_role(workspace_id, 'analyst'))
    );

drop policy if exists campaigns_delete on public.campaigns;
create policy campaigns_delete on public.campaigns
    for delete to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'));

drop policy if exists campaign_quests_select on public.campaign_quests;
create policy campaign_quests_select on public.campaign_quests
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists campaign_quests_insert on public.campaign_quests;
create policy campaign_quests_insert on public.campaign_quests
    for insert to authenticated
    with check (
        created_by = (select auth.uid()) and private.has_workspace_role(workspace_id, 'analyst')
    );

drop policy if exists campaign_quests_update on public.campaign_quests;
create policy campaign_quests_update on public.campaign_quests
    for update to authenticated
    using (private.has_workspace_role(workspace_id, 'analyst'))
    with check (private.has_workspace_role(workspace_id, 'analyst'));

-- The council's decisions are the system's record: members read them.
drop policy if exists campaign_decisions_select on public.campaign_decisions;
create policy campaign_decisions_select on public.campaign_decisions
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));

revoke all on public.campaigns, public.campaign_quests, public.campaign_decisions
    from anon, public;
grant select, insert, delete on public.campaigns to authenticated;
grant update (name, objective_type, positioning, target_cohorts, budget_usd, start_date,
    end_date, status, updated_at) on public.campaigns to authenticated;
grant select, insert on public.campaign_quests to authenticated;
grant update (chapters, success_metrics, updated_at) on public.campaign_quests to authenticated;
grant select on public.campaign_decisions to authenticated;
grant all on public.campaigns, public.campaign_quests, public.campaign_decisions
    to service_role;
