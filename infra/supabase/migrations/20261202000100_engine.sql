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

-- A run started by another area (a chat turn) keeps that area's context with it: the
-- conversation, the message it answers, the routing and history the reply is built on.
alter table public.runs drop constraint if exists runs_kind_check;
alter table public.runs add constraint runs_kind_check
    check (kind in ('single', 'pipeline', 'parallel', 'dag', 'chat'));
alter table public.runs add column if not exists context jsonb not null default '{}';

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

-- A question its run's cancellation left unanswered is closed, not pending forever.
alter table public.questions drop constraint if exists questions_status_check;
alter table public.questions add constraint questions_status_check
    check (status in ('pending', 'answered', 'cancelled'));

-- Reading a run's approvals per step (the latest one decides the step's gate).
create index if not exists approvals_step_idx on public.approvals (run_id, step_key, created_at);
-- The sweeper's and the question list's reads by run.
create index if not exists questions_run_idx on public.questions (run_id, step_key, created_at);

-- Documents are leased jobs like steps: an attempt number and a lease; `failed` is final.
alter table public.documents add column if not exists attempt integer not null default 0;
alter table public.documents add column if not exists lease_until timestamptz;
create index if not exists documents_pending_idx on public.documents (updated_at)
    where status in ('pending', 'processing');

-- A workspace's budget figures for a reservation, under the lock of the month's spend row
-- (made on the month's first reservation): reservations of one workspace queue up on it.
-- The sums are read by a statement that starts after the lock is granted, so they include
-- every reservation committed by whoever held it before (a single locking statement would
-- read them as of before its wait).
create or replace function private.lock_budget(p_workspace_id uuid, p_run_id uuid)
returns table (
    monthly_budget_usd numeric, spent_usd numeric, held numeric, run_held numeric,
    run_spent numeric
)
language plpgsql security invoker set search_path = '' as $$
declare
    v_month date := date_trunc('month', now() at time zone 'utc')::date;
begin
    perform 1 from public.workspace_spend
    where workspace_id = p_workspace_id and month = v_month
    for update;
    if not found then
        insert into public.workspace_spend (workspace_id, month)
        values (p_workspace_id, v_month)
        on conflict do nothing;
        perform 1 from public.workspace_spend
        where workspace_id = p_workspace_id and month = v_month
        for update;
    end if;
    return query
    select w.monthly_budget_usd, s.spent_usd,
        (select coalesce(sum(r.amount_usd), 0) from public.budget_reservations r
         where r.workspace_id = w.id and r.expires_at > now()),
        (select coalesce(sum(r.amount_usd), 0) from public.budget_reservations r
         where r.workspace_id = w.id and r.run_id = p_run_id and r.expires_at > now()),
        (select coalesce(sum(u.cost_usd), 0) from public.usage u
         where p_run_id is not null and u.run_id = p_run_id)
    from public.workspaces w
    join public.workspace_spend s on s.workspace_id = w.id and s.month = v_month
    where w.id = p_workspace_id;
end
$$;

revoke all on function private.lock_budget(uuid, uuid) from public;
grant execute on function private.lock_budget(uuid, uuid) to service_role;

-- The ledger's writes, as a list (applied in order, plans cached): set money aside for a
-- call ({op: reserve, id, workspace_id, run_id, amount_usd, ttl_seconds}), give it back
-- ({op: release, id}), or replace it by the call's cost and usage row ({op: settle,
-- reservation_id, usage: {...}}: the month's spend row is locked by its upsert). A system
-- transaction sends them with the run graph's save, or alone before it commits.
create or replace function private.apply_ledger(p_writes jsonb)
returns void
language plpgsql security invoker set search_path = '' as $$
declare
    w jsonb;
    u jsonb;
begin
    for w in select value from jsonb_array_elements(p_writes) loop
        case w ->> 'op'
        when 'reserve' then
            insert into public.budget_reservations
                (id, workspace_id, run_id, amount_usd, expires_at)
            values ((w ->> 'id')::uuid, (w ->> 'workspace_id')::uuid, (w ->> 'run_id')::uuid,
                (w ->> 'amount_usd')::numeric,
                now() + make_interval(secs => (w ->> 'ttl_seconds')::float8));
        when 'release' then
            delete from public.budget_reservations where id = (w ->> 'id')::uuid;
        when 'settle' then
            u := w -> 'usage';
            delete from public.budget_reservations where id = (w ->> 'reservation_id')::uuid;
            insert into public.usage (
                workspace_id, user_id, agent_code, run_id, step_key, provider, model, tier,
                requested_tier, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, cost_usd, latency_ms, attempts, status)
            values ((u ->> 'workspace_id')::uuid, (u ->> 'user_id')::uuid, u ->> 'agent_code',
                (u ->> 'run_id')::uuid, u ->> 'step_key', u ->> 'provider', u ->> 'model',
                u ->> 'tier', u ->> 'requested_tier', (u ->> 'input_tokens')::int,
                (u ->> 'output_tokens')::int, (u ->> 'cache_read_tokens')::int,
                (u ->> 'cache_write_tokens')::int, (u ->> 'cost_usd')::numeric,
                (u ->> 'latency_ms')::int, (u ->> 'attempts')::int, u ->> 'status');
            insert into public.workspace_spend (workspace_id, month, spent_usd)
            values ((u ->> 'workspace_id')::uuid,
                date_trunc('month', now() at time zone 'utc')::date,
                (u ->> 'cost_usd')::numeric)
            on conflict (workspace_id, month)
            do update set spent_usd = public.workspace_spend.spent_usd + excluded.spent_usd;
        else
            raise exception 'unknown ledger write %', w ->> 'op';
        end case;
    end loop;
end
$$;

revoke all on function private.apply_ledger(jsonb) from public;
grant execute on function private.apply_ledger(jsonb) to service_role;

-- The run graph's storage, as two functions: one loads a run and its steps under the run
-- row's lock, one writes back a change. They decide nothing (the domain does); they exist so
-- that the engine's statements are planned once per connection (PL/pgSQL caches the plans
-- of the statements inside a function, which works through a transaction pooler where
-- client-side prepared statements do not). Both run with the caller's rights: row-level
-- security applies to every statement inside, as it would to the statements themselves.

-- It returns json, not jsonb: built as text, it costs the database a third less to make
-- (the client parses the same text either way).
-- With p_steps (a worker claiming them), the same call also returns, per step, what its
-- prompt is made of and the workspace's own row of its agent and, under the month's spend
-- row lock (taken after the run's, as everywhere), the budget figures the steps'
-- reservations are checked against: a claim is one round trip.
create or replace function private.load_run_graph(
    p_workspace_id uuid, p_run_id uuid, p_steps text[] default null
)
returns json
language plpgsql security invoker set search_path = '' as $$
declare
    v_run json;
    v_steps json;
    v_claims json;
    v_budget json;
begin
    select row_to_json(r) into v_run
    from (
        select id, workspace_id, created_by, kind, title, input, status,
               budget_usd::text as budget_usd, output, error, created_at, updated_at,
               finished_at, context
        from public.runs where id = p_run_id and workspace_id = p_workspace_id
        for no key update
    ) r;
    if v_run is null then
        return null;
    end if;
    -- Outputs only of the steps the run's output is made of (nothing depends on them), and
    -- each gated step's latest approval.
    with needed as (
        select distinct unnest(depends_on) as key from public.steps where run_id = p_run_id
    )
    select coalesce(json_agg(json_build_object(
            'key', s.key, 'agent_code', s.agent_code, 'position', s.position,
            'status', s.status, 'depends_on', s.depends_on,
            'requires_approval', s.requires_approval, 'on_reject', s.on_reject,
            'attempt', s.attempt, 'lease_until', s.lease_until, 'queued_at', s.queued_at,
            'started_at', s.started_at, 'finished_at', s.finished_at,
            'output', case when s.key not in (select key from needed) then s.output end,
            'error', s.error, 'provider', s.provider, 'model', s.model,
            'input_tokens', s.input_tokens, 'output_tokens', s.output_tokens,
            'cost_usd', s.cost_usd::text, 'approval_id', a.id, 'gate', a.status
        ) order by s.position), '[]'::json)
    into v_steps
    from public.steps s
    left join lateral (
        select id, status from public.approvals
        where run_id = s.run_id and step_key = s.key order by created_at desc limit 1
    ) a on s.requires_approval
    where s.run_id = p_run_id;
    if p_steps is not null then
        select coalesce(json_object_agg(s.key, json_build_object(
            'prompt', s.prompt,
            'handoffs', coalesce((
                select json_agg(json_build_object(
                    'key', h.step_key, 'agent', d.agent_code, 'content', h.content,
                    'metadata', h.metadata) order by array_position(s.depends_on, h.step_key))
                from public.handoffs h
                join public.steps d on d.run_id = h.run_id and d.key = h.step_key
                where h.run_id = p_run_id and h.step_key = any(s.depends_on)
            ), '[]'::json),
            'answers', coalesce((
                select json_agg(json_build_array(q.question, q.answer) order by q.created_at)
                from public.questions q
                where q.run_id = p_run_id and q.step_key = s.key and q.status = 'answered'
            ), '[]'::json),
            'agent', (
                select row_to_json(a) from public.agents a
                where a.workspace_id = p_workspace_id and a.code = s.agent_code
            )
        )), '{}'::json)
        into v_claims
        from public.steps s
        where s.run_id = p_run_id and s.key = any(p_steps);
        select json_build_object(
            'monthly_budget_usd', b.monthly_budget_usd::text, 'spent_usd', b.spent_usd::text,
            'held', b.held::text, 'run_held', b.run_held::text, 'run_spent', b.run_spent::text)
        into v_budget
        from private.lock_budget(p_workspace_id, p_run_id) b;
    end if;
    return json_build_object(
        'run', v_run, 'steps', v_steps, 'claims', v_claims, 'budget', v_budget);
end
$$;

-- p_change: {workspace_id, run_id, run (or null), new_steps [...], steps [...], handoffs [...],
-- approvals [...], decisions [...], questions [...], answers [...], ledger [...] (the
-- transaction's ledger writes, see apply_ledger: applied after the run's rows, so the spend
-- row is locked after the run's and before the event counter), events [...]}.
-- A pending gate decided (or answered) twice in a race applies once: the second change
-- raises a conflict (SQLSTATE P0409), so a caller need not read the result before commit.
-- Events go last: the counter row stays locked until commit, so events commit in number
-- order.
create or replace function private.save_run_graph(p_change jsonb)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    v_ws uuid := (p_change ->> 'workspace_id')::uuid;
    v_run_id uuid := (p_change ->> 'run_id')::uuid;
    v_decided int := 0;
    v_answered int := 0;
    v_events int := jsonb_array_length(p_change -> 'events');
begin
    if p_change -> 'run' is not null and jsonb_typeof(p_change -> 'run') = 'object' then
        update public.runs set
            status = p_change -> 'run' ->> 'status',
            output = p_change -> 'run' ->> 'output',
            error = p_change -> 'run' ->> 'error',
            updated_at = (p_change -> 'run' ->> 'updated_at')::timestamptz,
            finished_at = (p_change -> 'run' ->> 'finished_at')::timestamptz
        where id = v_run_id;
    end if;
    -- Steps a running run grew (a discussion's next turns), before the updates.
    if jsonb_array_length(coalesce(p_change -> 'new_steps', '[]'::jsonb)) > 0 then
        insert into public.steps (run_id, key, workspace_id, position, agent_code, prompt,
            depends_on, requires_approval, on_reject, status, queued_at, attempt,
            lease_until, started_at)
        select v_run_id, x.key, v_ws, x.position, x.agent_code, x.prompt, x.depends_on,
            x.requires_approval, x.on_reject, x.status, x.queued_at, x.attempt,
            x.lease_until, x.started_at
        from jsonb_to_recordset(p_change -> 'new_steps') as x(
            key text, position int, agent_code text, prompt text, depends_on text[],
            requires_approval boolean, on_reject text, status text, queued_at timestamptz,
            attempt int, lease_until timestamptz, started_at timestamptz);
    end if;
    if jsonb_array_length(p_change -> 'steps') > 0 then
        update public.steps t set
            status = x.status, attempt = x.attempt, lease_until = x.lease_until,
            queued_at = x.queued_at, started_at = x.started_at, finished_at = x.finished_at,
            output = coalesce(x.output, t.output), error = x.error, provider = x.provider,
            model = x.model, input_tokens = x.input_tokens, output_tokens = x.output_tokens,
            cost_usd = x.cost_usd
        from jsonb_to_recordset(p_change -> 'steps') as x(
            key text, status text, attempt int, lease_until timestamptz,
            queued_at timestamptz, started_at timestamptz, finished_at timestamptz,
            output text, error text, provider text, model text, input_tokens int,
            output_tokens int, cost_usd numeric)
        where t.run_id = v_run_id and t.key = x.key;
    end if;
    if jsonb_array_length(p_change -> 'approvals') > 0 then
        insert into public.approvals (id, workspace_id, run_id, step_key)
        select x.id, v_ws, v_run_id, x.step_key
        from jsonb_to_recordset(p_change -> 'approvals') as x(id uuid, step_key text);
    end if;
    if jsonb_array_length(p_change -> 'decisions') > 0 then
        update public.approvals a set
            status = x.status, comment = x.comment, decided_by = x.decided_by,
            decided_at = now()
        from jsonb_to_recordset(p_change -> 'decisions')
            as x(id uuid, status text, comment text, decided_by uuid)
        where a.id = x.id and a.status = 'pending';
        get diagnostics v_decided = row_count;
        if v_decided < jsonb_array_length(p_change -> 'decisions') then
            raise exception using errcode = 'P0409', message = 'the approval was already decided';
        end if;
    end if;
    if jsonb_array_length(p_change -> 'questions') > 0 then
        insert into public.questions (id, workspace_id, run_id, step_key, question)
        select x.id, v_ws, v_run_id, x.step_key, x.question
        from jsonb_to_recordset(p_change -> 'questions')
            as x(id uuid, step_key text, question text);
    end if;
    if jsonb_array_length(p_change -> 'answers') > 0 then
        update public.questions q set
            status = 'answered', answer = x.answer, answered_by = x.answered_by,
            answered_at = now()
        from jsonb_to_recordset(p_change -> 'answers')
            as x(id uuid, answer text, answered_by uuid)
        where q.id = x.id and q.status = 'pending';
        get diagnostics v_answered = row_count;
        if v_answered < jsonb_array_length(p_change -> 'answers') then
            raise exception using errcode = 'P0409', message = 'the question was already answered';
        end if;
    end if;
    if coalesce((p_change ->> 'close_questions')::boolean, false) then
        update public.questions set status = 'cancelled'
        where run_id = v_run_id and status = 'pending';
    end if;
    if jsonb_array_length(p_change -> 'handoffs') > 0 then
        insert into public.handoffs (run_id, step_key, workspace_id, content, metadata)
        select v_run_id, x.step_key, v_ws, x.content, x.metadata
        from jsonb_to_recordset(p_change -> 'handoffs')
            as x(step_key text, content text, metadata jsonb)
        on conflict (run_id, step_key) do update
            set content = excluded.content, metadata = excluded.metadata, created_at = now();
    end if;
    if jsonb_array_length(coalesce(p_change -> 'ledger', '[]'::jsonb)) > 0 then
        perform private.apply_ledger(p_change -> 'ledger');
    end if;
    if v_events > 0 then
        with counter as (
            update public.event_counters set last_seq = last_seq + v_events
            where stream_id = v_run_id returning last_seq - v_events as base
        )
        insert into public.events (workspace_id, run_id, seq, type, payload)
        select v_ws, v_run_id, counter.base + e.ord, e.value ->> 'type', e.value -> 'payload'
        from counter, jsonb_array_elements(p_change -> 'events') with ordinality as e(value, ord);
    end if;
    return jsonb_build_object('decisions', v_decided, 'answers', v_answered);
end
$$;

revoke all on function private.load_run_graph(uuid, uuid, text[]) from public;
revoke all on function private.save_run_graph(jsonb) from public;
grant execute on function private.load_run_graph(uuid, uuid, text[])
    to authenticated, service_role;
grant execute on function private.save_run_graph(jsonb) to authenticated, service_role;
