-- Operations: the self-audit's findings.
-- The SelfAuditFunction (service role) writes them; a workspace's findings are read by that
-- workspace's admins; system findings (workspace_id null) are read by no tenant.

create table if not exists public.audits (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid references public.workspaces (id) on delete cascade,
    -- Which audit found it: the daily operations checks or the weekly reflection.
    audit text not null check (audit in ('operations', 'reflection')),
    -- The check that found it (stuck_runs, dead_steps, dlq_depth, ...).
    check_name text not null check (check_name ~ '^[a-z][a-z0-9_]{1,63}$'),
    severity text not null check (severity in ('info', 'warning', 'critical')),
    subject text not null check (char_length(subject) between 1 and 300),
    details jsonb not null default '{}',
    created_at timestamptz not null default now()
);

create index if not exists audits_workspace_created_idx
    on public.audits (workspace_id, created_at desc);
create index if not exists audits_system_created_idx
    on public.audits (created_at desc) where workspace_id is null;

alter table public.audits enable row level security;
alter table public.audits force row level security;

drop policy if exists audits_select on public.audits;
create policy audits_select on public.audits
    for select to authenticated
    using (workspace_id is not null and private.has_workspace_role(workspace_id, 'admin'));

revoke all on public.audits from anon, public;
grant select on public.audits to authenticated;
grant all on public.audits to service_role;

-- Agents' activity (GET /agents stats: success rate, latency, running now) reads a
-- workspace's recently settled steps.
create index if not exists steps_workspace_finished_idx
    on public.steps (workspace_id, finished_at);

-- Response cache: a deterministic model request answered from the cache is recorded as a
-- usage row of status 'cached' with no tokens, no cost and no provider attempt.
alter table public.usage drop constraint if exists usage_status_check;
alter table public.usage add constraint usage_status_check
    check (status in ('succeeded', 'partial', 'cached'));
alter table public.usage drop constraint if exists usage_attempts_check;
alter table public.usage add constraint usage_attempts_check check (attempts >= 0);
