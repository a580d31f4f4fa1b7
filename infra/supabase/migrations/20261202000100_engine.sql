-- The run engine in the domain: event numbering apart from the run row, documents as leased
-- jobs, and the step engine's single-statement reads.

-- Events are numbered per stream (a run) by a counter row of their own, taken last in each
-- writing transaction. Token appends number their events without touching the run row, so
-- they never wait on the run's lock while another step of the same run commits.
create table if not exists public.event_counters (
    stream_id uuid primary key references public.runs (id) on delete cascade,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    last_seq integer not null default 0 check (last_seq >= 0)
);

insert into public.event_counters (stream_id, workspace_id, last_seq)
select id, workspace_id, last_event_seq from public.runs
on conflict (stream_id) do nothing;

alter table public.runs drop column if exists last_event_seq;

alter table public.event_counters enable row level security;
alter table public.event_counters force row level security;

drop policy if exists event_counters_select on public.event_counters;
create policy event_counters_select on public.event_counters
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));
drop policy if exists event_counters_insert on public.event_counters;
create policy event_counters_insert on public.event_counters
    for insert to authenticated
    with check (private.has_workspace_role(workspace_id, 'operator'));
drop policy if exists event_counters_update on public.event_counters;
create policy event_counters_update on public.event_counters
    for update to authenticated
    using (private.has_workspace_role(workspace_id, 'operator'))
    with check (private.has_workspace_role(workspace_id, 'operator'));

revoke all on public.event_counters from anon, public;
grant select, insert, update (last_seq) on public.event_counters to authenticated;
grant all on public.event_counters to service_role;

-- Reading a run's approvals per step (the latest one decides the step's gate).
create index if not exists approvals_step_idx on public.approvals (run_id, step_key, created_at);
-- The sweeper's and the question list's reads by run.
create index if not exists questions_run_idx on public.questions (run_id, step_key, created_at);

-- Documents are leased jobs like steps: an attempt number and a lease; `failed` is final.
alter table public.documents add column if not exists attempt integer not null default 0;
alter table public.documents add column if not exists lease_until timestamptz;
create index if not exists documents_pending_idx on public.documents (updated_at)
    where status in ('pending', 'processing');
