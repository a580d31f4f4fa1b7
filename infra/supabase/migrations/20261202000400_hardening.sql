-- Hardening after an outside attack: what a signed-in member can no longer do with their
-- own JWT in SQL (PostgREST-style access), whatever the API does.

-- Memory ranking ---------------------------------------------------------------------------
-- Feedback, access counts and the last access rank memories for every member who shares
-- them, so members no longer write those columns: a vote goes through vote_memory (one
-- vote per member, the score is their sum) and access counts are written by the system.

create table if not exists public.memory_votes (
    memory_id uuid not null references public.memories (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    value smallint not null check (value in (-1, 1)),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (memory_id, user_id)
);
create index if not exists memory_votes_user_idx on public.memory_votes (user_id);
create index if not exists memory_votes_workspace_idx on public.memory_votes (workspace_id);

alter table public.memory_votes enable row level security;
alter table public.memory_votes force row level security;

-- A member sees their own votes; nobody writes them except through vote_memory.
drop policy if exists memory_votes_select on public.memory_votes;
create policy memory_votes_select on public.memory_votes
    for select to authenticated
    using (
        user_id = (select auth.uid())
        and workspace_id in (select private.member_workspace_ids('viewer'))
    );

revoke all on public.memory_votes from anon, public;
grant select on public.memory_votes to authenticated;
grant all on public.memory_votes to service_role;

revoke update (feedback_score, access_count, last_accessed_at) on public.memories
    from authenticated;
revoke update on public.memories from authenticated;
drop policy if exists memories_update on public.memories;

-- Scores stacked before votes were recorded cannot be told apart from honest ones: every
-- memory starts again from its (empty) set of votes.
update public.memories set feedback_score = 0 where feedback_score <> 0;

-- The caller's vote on a memory they can see (the visibility rule of memories_select);
-- null when they cannot see it. The memory's row lock orders concurrent votes, so each
-- sum is taken after every earlier vote has committed.
create or replace function private.vote_memory(
    p_workspace_id uuid, p_memory_id uuid, p_value int
) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_user uuid := (select auth.uid());
    v_score integer;
begin
    if v_user is null then
        raise exception using errcode = '42501', message = 'not signed in';
    end if;
    if p_value is null or p_value not in (-1, 1) then
        raise exception using errcode = '22023', message = 'a vote is 1 or -1';
    end if;
    perform 1 from public.memories m
    where m.id = p_memory_id
      and m.workspace_id = p_workspace_id
      and private.has_workspace_role(p_workspace_id, 'viewer')
      and (m.scope = 'workspace' or m.owner_id = v_user)
    for no key update;
    if not found then
        return null;
    end if;
    insert into public.memory_votes (memory_id, user_id, workspace_id, value)
    values (p_memory_id, v_user, p_workspace_id, p_value)
    on conflict (memory_id, user_id)
    do update set value = excluded.value, updated_at = now();
    update public.memories m
    set feedback_score = (
        select coalesce(sum(v.value), 0) from public.memory_votes v where v.memory_id = m.id
    )
    where m.id = p_memory_id
    returning m.feedback_score into v_score;
    return v_score;
end;
$$;
revoke all on function private.vote_memory(uuid, uuid, int) from public;
grant execute on function private.vote_memory(uuid, uuid, int) to authenticated, service_role;

-- A vector without direction has no cosine to anything (NaN). Members insert memories
-- with their own JWT, so the table refuses such vectors itself. Existing rows are not
-- re-checked (not valid): searches treat a NaN similarity as none.
do $$
begin
    if not exists (
        select 1 from pg_constraint where conname = 'memories_embedding_has_direction'
    ) then
        alter table public.memories add constraint memories_embedding_has_direction
            check (extensions.vector_norm(embedding) > 0) not valid;
    end if;
end
$$;

-- Workspaces and memberships: members update only what the API changes ----------------------
-- Row-level security says which rows an admin may update, not which columns: with a
-- table-wide grant an admin could rewrite created_by or the slug, or move a membership to
-- another user or workspace.

revoke update on public.workspaces from authenticated;
grant update (name, monthly_budget_usd, conversation_retention_days) on public.workspaces
    to authenticated;
revoke update on public.workspace_members from authenticated;
grant update (role, account_kind) on public.workspace_members to authenticated;

-- Slugs are made here, with a random suffix always (a collision draws another): the answer
-- is the same whether or not another tenant holds a slug, so it reveals none. `p_slug` is
-- only the requested start, reduced to the allowed characters.
create or replace function public.create_workspace(
    p_name text,
    p_slug text,
    p_monthly_budget_usd numeric default null
) returns public.workspaces
language plpgsql security definer
set search_path = ''
as $$
declare
    v_user uuid := (select auth.uid());
    v_base text;
    v_row public.workspaces;
begin
    if v_user is null then
        raise exception using errcode = '42501', message = 'not signed in';
    end if;
    v_base := regexp_replace(lower(coalesce(nullif(p_slug, ''), p_name, '')), '[^a-z0-9]+', '-', 'g');
    v_base := trim(both '-' from left(trim(both '-' from v_base), 40));
    if v_base = '' then
        v_base := 'workspace';
    end if;
    for attempt in 1..8 loop
        begin
            insert into public.workspaces (name, slug, monthly_budget_usd, created_by)
            values (
                p_name,
                v_base || '-' || left(replace(gen_random_uuid()::text, '-', ''), 8),
                coalesce(p_monthly_budget_usd, 10),
                v_user
            )
            returning * into v_row;
            exit;
        exception when unique_violation then
            if attempt = 8 then
                raise;
            end if;
        end;
    end loop;
    insert into public.workspace_members (workspace_id, user_id, role)
    values (v_row.id, v_user, 'owner');
    return v_row;
end;
$$;

revoke all on function public.create_workspace(text, text, numeric) from public, anon;
grant execute on function public.create_workspace(text, text, numeric) to authenticated;

-- Members join by invitation ------------------------------------------------------------------
-- Adding a member by email answered differently for registered and unknown emails (a row
-- or null), so any admin of any workspace could probe emails. Now every address gets an
-- invitation, answered alike; it becomes a membership when the account with that
-- confirmed email signs up (or confirms or changes its email), or next loads its profile.

drop function if exists public.add_workspace_member(uuid, text, text);

create table if not exists public.member_invites (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    email text not null check (email = lower(email) and char_length(email) between 3 and 254),
    role text not null check (role in ('owner', 'admin', 'operator', 'analyst', 'viewer')),
    invited_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '14 days',
    primary key (workspace_id, email)
);
create index if not exists member_invites_email_idx on public.member_invites (email);

alter table public.member_invites enable row level security;
alter table public.member_invites force row level security;

drop policy if exists member_invites_select on public.member_invites;
create policy member_invites_select on public.member_invites
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'));

revoke all on public.member_invites from anon, public;
grant select on public.member_invites to authenticated;
grant all on public.member_invites to service_role;

-- Invite an email (again: the role and expiry are renewed). The same row comes back
-- whether or not the email has an account; an email that is already a member's is a
-- conflict (the member list shows members' emails anyway).
create or replace function public.invite_workspace_member(
    p_workspace_id uuid,
    p_email text,
    p_role text
) returns public.member_invites
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_email text := lower(trim(p_email));
    v_row public.member_invites;
begin
    if (select auth.uid()) is null then
        raise exception using errcode = '42501', message = 'not signed in';
    end if;
    if not private.has_workspace_role(p_workspace_id, 'admin') then
        raise exception using errcode = '42501', message = 'admin role required';
    end if;
    if p_role = 'owner' and not private.has_workspace_role(p_workspace_id, 'owner') then
        raise exception using errcode = '42501', message = 'only an owner may grant owner';
    end if;
    if exists (
        select 1 from public.workspace_members m
        join auth.users u on u.id = m.user_id
        where m.workspace_id = p_workspace_id and lower(u.email) = v_email
    ) then
        raise exception using errcode = 'P0409', message = 'that email is already a member''s';
    end if;
    insert into public.member_invites (workspace_id, email, role, invited_by)
    values (p_workspace_id, v_email, p_role, (select auth.uid()))
    on conflict (workspace_id, email) do update
        set role = excluded.role, invited_by = excluded.invited_by,
            created_at = now(), expires_at = now() + interval '14 days'
    returning * into v_row;
    return v_row;
end;
$$;

revoke all on function public.invite_workspace_member(uuid, text, text) from public, anon;
grant execute on function public.invite_workspace_member(uuid, text, text) to authenticated;

-- The invitations to a user's email become memberships, once that email is confirmed (an
-- unconfirmed sign-up proves nothing about who reads the mailbox).
create or replace function private.accept_invites(p_user_id uuid) returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_email text;
    v_joined integer;
begin
    select lower(u.email) into v_email from auth.users u
    where u.id = p_user_id and u.email_confirmed_at is not null;
    if v_email is null then
        return 0;
    end if;
    -- Expired invitations go too, unused.
    with taken as (
        delete from public.member_invites i
        where i.email = v_email
        returning i.workspace_id, i.role, i.expires_at
    ), joined as (
        insert into public.workspace_members (workspace_id, user_id, role)
        select t.workspace_id, p_user_id, t.role from taken t where t.expires_at > now()
        on conflict (workspace_id, user_id) do nothing
        returning 1
    )
    select count(*) into v_joined from joined;
    return v_joined;
end;
$$;
revoke all on function private.accept_invites(uuid) from public;

create or replace function public.accept_my_invites() returns integer
language sql volatile security definer
set search_path = ''
as $$
    select private.accept_invites((select auth.uid()))
$$;
revoke all on function public.accept_my_invites() from public, anon;
grant execute on function public.accept_my_invites() to authenticated;

create or replace function private.accept_invites_of_new_email() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    perform private.accept_invites(new.id);
    return new;
end;
$$;
revoke all on function private.accept_invites_of_new_email() from public;

drop trigger if exists on_auth_user_email_confirmed on auth.users;
create trigger on_auth_user_email_confirmed
    after insert or update of email, email_confirmed_at on auth.users
    for each row when (new.email_confirmed_at is not null)
    execute function private.accept_invites_of_new_email();

-- Tokens outlive their accounts ---------------------------------------------------------------
-- A JWT stays valid until it expires; the API asks here (and keeps the answer briefly)
-- whether its user still exists, is not banned and, optionally, whether its session is
-- still open. Only the service role may ask: nobody learns about other accounts.
create or replace function private.account_active(p_user_id uuid, p_session_id uuid)
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select 1 from auth.users u
        where u.id = p_user_id
          and u.deleted_at is null
          and (u.banned_until is null or u.banned_until <= now())
    ) and (
        p_session_id is null or exists (
            select 1 from auth.sessions s
            where s.id = p_session_id and s.user_id = p_user_id
              and (s.not_after is null or s.not_after > now())
        )
    )
$$;
revoke all on function private.account_active(uuid, uuid) from public;
grant execute on function private.account_active(uuid, uuid) to service_role;
