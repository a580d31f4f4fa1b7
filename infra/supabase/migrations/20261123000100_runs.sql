-- Durable runs: runs, their steps, handoffs between steps, approvals, questions and the
-- ordered event log. Members read; operators and up start, steer and answer runs; the step
-- engine (service role) does the rest. See docs/architecture.md.

create table if not exists public.runs (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    created_by uuid references auth.users (id) on delete set null,
    kind text not null check (kind in ('single', 'pipeline', 'parallel', 'dag')),
    title text not null check (char_length(title) between 1 and 200),
    input text not null check (char_length(input) <= 20000),
    status text not null default 'queued' check (
        status in ('queued', 'running', 'waiting_approval', 'waiting_input', 'succeeded',
                   'failed', 'cancelled')
    ),
    budget_usd numeric(20, 10) check (budget_usd > 0),
    output text,
    error text,
    -- The last event's number: events are numbered per run under this row's lock.
    last_event_seq integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz
);

create index if not exists runs_workspace_created_idx on public.runs (workspace_id, created_at desc);

create table if not exists public.steps (
    run_id uuid not null references public.runs (id) on delete cascade,
    key text not null check (key ~ '^[A-Za-z][A-Za-z0-9_-]{0,63}$'),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    position integer not null,
    agent_code text not null,
    prompt text,
    depends_on text[] not null default '{}',
    requires_approval boolean not null default false,
    on_reject text not null default 'fail' check (on_reject in ('fail', 'skip')),
    status text not null default 'pending' check (
        status in ('pending', 'queued', 'running', 'succeeded', 'failed', 'dead', 'skipped',
                   'waiting_approval', 'waiting_input')
    ),
    attempt integer not null default 0,
    lease_until timestamptz,
    queued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    output text,
    error text,
    provider text,
    model text,
    input_tokens integer not null default 0,
    output_tokens integer not null default 0,
    cost_usd numeric(20, 10) not null default 0,
    primary key (run_id, key)
);

-- The sweeper's scan: queued steps by age, running steps by lease.
create index if not exists steps_queued_idx on public.steps (queued_at) where status = 'queued';
create index if not exists steps_lease_idx on public.steps (lease_until) where status = 'running';

create table if not exists public.handoffs (
    run_id uuid not null,
    step_key text not null,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    content text not null,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    primary key (run_id, step_key),
    foreign key (run_id, step_key) references public.steps (run_id, key) on delete cascade
);

create table if not exists public.approvals (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    run_id uuid not null,
    step_key text not null,
    status text not null default 'pending' check (status in ('pending', 'approved', 'rejected')),
    comment text check (char_length(comment) <= 2000),
    decided_by uuid references auth.users (id) on delete set null,
    decided_at timestamptz,
    created_at timestamptz not null default now(),
    foreign key (run_id, step_key) references public.steps (run_id, key) on delete cascade
);

create index if not exists approvals_workspace_idx on public.approvals (workspace_id, status, created_at);
create unique index if not exists approvals_one_pending_idx
    on public.approvals (run_id, step_key) where status = 'pending';

create table if not exists public.questions (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    run_id uuid not null,
    step_key text not null,
    question text not null check (char_length(question) between 1 and 4000),
    status text not null default 'pending' check (status in ('pending', 'answered')),
    answer text check (char_length(answer) <= 20000),
    answered_by uuid references auth.users (id) on delete set null,
    answered_at timestamptz,
    created_at timestamptz not null default now(),
    foreign key (run_id, step_key) references public.steps (run_id, key) on delete cascade
);

create index if not exists questions_workspace_idx on public.questions (workspace_id, status, created_at);

create table if not exists public.events (
    id bigint generated always as identity primary key,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    run_id uuid not null references public.runs (id) on delete cascade,
    seq integer not null,
    type text not null check (type ~ '^[a-z]+\.[a-z_]+$'),
    payload jsonb not null default '{}',
    created_at timestamptz not null default now(),
    unique (run_id, seq)
);

-- RLS ---------------------------------------------------------------------------------------

alter table public.runs enable row level security;
alter table public.runs force row level security;
alter table public.steps enable row level security;
alter table public.steps force row level security;
alter table public.handoffs enable row level security;
alter table public.handoffs force row level security;
alter table public.approvals enable row level security;
alter table public.approvals force row level security;
alter table public.questions enable row level security;
alter table public.questions force row level security;
alter table public.events enable row level security;
alter table public.events force row level security;

do $$
declare
    t text;
begin
    foreach t in array array['runs', 'steps', 'handoffs', 'approvals', 'questions', 'events'] loop
        execute format('drop policy if exists %1$s_select on public.%1$s', t);
        execute format(
            'create policy %1$s_select on public.%1$s for select to authenticated'
            ' using (private.has_workspace_role(workspace_id, ''viewer''))', t);
    end loop;
    -- Operators and up start runs, cancel them, retry steps, decide approvals and answer
    -- questions; each of those writes its rows and events in the caller's transaction.
    foreach t in array array['runs', 'steps', 'approvals', 'questions', 'events'] loop
        execute format('drop policy if exists %1$s_insert on public.%1$s', t);
        execute format(
            'create policy %1$s_insert on public.%1$s for insert to authenticated'
            ' with check (private.has_workspace_role(workspace_id, ''operator''))', t);
    end loop;
    foreach t in array array['runs', 'steps', 'approvals', 'questions'] loop
        execute format('drop policy if exists %1$s_update on public.%1$s', t);
        execute format(
            'create policy %1$s_update on public.%1$s for update to authenticated'
            ' using (private.has_workspace_role(workspace_id, ''operator''))'
            ' with check (private.has_workspace_role(workspace_id, ''operator''))', t);
    end loop;
end
$$;

-- A run's rows always belong to the run's workspace (a step cannot be filed under a run of
-- another tenant even by the service role).
create or replace function private.check_run_workspace() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if not exists (
        select 1 from public.runs r where r.id = new.run_id and r.workspace_id = new.workspace_id
    ) then
        raise exception using errcode = '23503', message = 'run belongs to another workspace';
    end if;
    return new;
end
$$;
revoke all on function private.check_run_workspace() from public;

do $$
declare
    t text;
begin
    foreach t in array array['steps', 'handoffs', 'approvals', 'questions', 'events'] loop
        execute format('drop trigger if exists %1$s_run_workspace on public.%1$s', t);
        execute format(
            'create trigger %1$s_run_workspace before insert or update of run_id, workspace_id'
            ' on public.%1$s for each row execute function private.check_run_workspace()', t);
    end loop;
end
$$;

revoke all on public.runs, public.steps, public.handoffs, public.approvals, public.questions,
    public.events from anon, public;
grant select, insert, update on public.runs, public.steps, public.approvals, public.questions
    to authenticated;
grant select, insert on public.events to authenticated;
grant select on public.handoffs to authenticated;
grant all on public.runs, public.steps, public.handoffs, public.approvals, public.questions,
    public.events to service_role;
