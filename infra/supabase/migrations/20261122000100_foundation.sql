-- Foundation: workspaces (the tenants), their members with roles, and user profiles.
-- Every table has RLS enabled and forced; policies are written for `authenticated` only
-- and use (select auth.uid()) so the planner evaluates it once per statement (an initplan).

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Roles ----------------------------------------------------------------------------

create or replace function private.role_rank(p_role text) returns int
language sql immutable
set search_path = ''
as $$
    select case p_role
        when 'owner' then 5
        when 'admin' then 4
        when 'operator' then 3
        when 'analyst' then 2
        when 'viewer' then 1
        else 0
    end
$$;

-- Tables ---------------------------------------------------------------------------

create table if not exists public.workspaces (
    id uuid primary key default gen_random_uuid(),
    name text not null check (char_length(name) between 1 and 120),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    monthly_budget_usd numeric(12, 2) not null default 10 check (monthly_budget_usd >= 0),
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now()
);

create table if not exists public.workspace_members (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role text not null check (role in ('owner', 'admin', 'operator', 'analyst', 'viewer')),
    created_at timestamptz not null default now(),
    primary key (workspace_id, user_id)
);
create index if not exists workspace_members_user_id_idx on public.workspace_members (user_id);

create table if not exists public.profiles (
    id uuid primary key references auth.users (id) on delete cascade,
    email text,
    full_name text check (char_length(full_name) <= 200),
    account_kind text not null default 'standard'
        check (account_kind in ('admin', 'parent', 'child', 'standard')),
    weekly_image_limit int not null default 20 check (weekly_image_limit >= 0),
    last_active timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Membership helper: SECURITY DEFINER so policies on workspace_members can consult
-- workspace_members without recursing into their own RLS.
create or replace function private.has_workspace_role(p_workspace_id uuid, p_min_role text)
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select 1
        from public.workspace_members m
        where m.workspace_id = p_workspace_id
          and m.user_id = (select auth.uid())
          and private.role_rank(m.role) >= private.role_rank(p_min_role)
    )
$$;

create or replace function private.shares_workspace_with(p_user_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select 1
        from public.workspace_members mine
        join public.workspace_members theirs on theirs.workspace_id = mine.workspace_id
        where mine.user_id = (select auth.uid()) and theirs.user_id = p_user_id
    )
$$;

revoke all on function private.role_rank(text) from public;
revoke all on function private.has_workspace_role(uuid, text) from public;
revoke all on function private.shares_workspace_with(uuid) from public;
grant execute on function private.role_rank(text) to authenticated, service_role;
grant execute on function private.has_workspace_role(uuid, text) to authenticated, service_role;
grant execute on function private.shares_workspace_with(uuid) to authenticated, service_role;

-- Profiles follow auth.users (the standard Supabase pattern) --------------------------

create or replace function private.handle_new_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    insert into public.profiles (id, email, full_name)
    values (new.id, new.email, nullif(new.raw_user_meta_data ->> 'full_name', ''))
    on conflict (id) do nothing;
    return new;
end;
$$;

drop trigger if exists on_auth_user_created on auth.users;
create trigger on_auth_user_created
    after insert on auth.users
    for each row execute function private.handle_new_user();

-- A workspace always keeps an owner ----------------------------------------------------

create or replace function private.keep_an_owner() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    if old.role <> 'owner' then
        return coalesce(new, old);
    end if;
    if tg_op = 'UPDATE' and new.role = 'owner' then
        return new;
    end if;
    -- Deleting the whole workspace cascades here; that is not "removing the last owner".
    if not exists (select 1 from public.workspaces w where w.id = old.workspace_id) then
        return coalesce(new, old);
    end if;
    if not exists (
        select 1 from public.workspace_members m
        where m.workspace_id = old.workspace_id
          and m.role = 'owner'
          and m.user_id <> old.user_id
    ) then
        raise exception using errcode = 'P0409', message = 'a workspace must keep at least one owner';
    end if;
    return coalesce(new, old);
end;
$$;

drop trigger if exists keep_an_owner on public.workspace_members;
create trigger keep_an_owner
    before update or delete on public.workspace_members
    for each row execute function private.keep_an_owner();

-- Creating a workspace makes the caller its owner, atomically ---------------------------

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
    v_row public.workspaces;
begin
    if v_user is null then
        raise exception using errcode = '42501', message = 'not signed in';
    end if;
    insert into public.workspaces (name, slug, monthly_budget_usd, created_by)
    values (p_name, p_slug, coalesce(p_monthly_budget_usd, 10), v_user)
    returning * into v_row;
    insert into public.workspace_members (workspace_id, user_id, role)
    values (v_row.id, v_user, 'owner');
    return v_row;
end;
$$;

revoke all on function public.create_workspace(text, text, numeric) from public, anon;
grant execute on function public.create_workspace(text, text, numeric) to authenticated;

-- Row level security -------------------------------------------------------------------

alter table public.workspaces enable row level security;
alter table public.workspaces force row level security;
alter table public.workspace_members enable row level security;
alter table public.workspace_members force row level security;
alter table public.profiles enable row level security;
alter table public.profiles force row level security;

drop policy if exists workspaces_select on public.workspaces;
create policy workspaces_select on public.workspaces
    for select to authenticated
    using (private.has_workspace_role(id, 'viewer'));

drop policy if exists workspaces_update on public.workspaces;
create policy workspaces_update on public.workspaces
    for update to authenticated
    using (private.has_workspace_role(id, 'admin'))
    with check (private.has_workspace_role(id, 'admin'));

drop policy if exists workspaces_delete on public.workspaces;
create policy workspaces_delete on public.workspaces
    for delete to authenticated
    using (private.has_workspace_role(id, 'owner'));

drop policy if exists members_select on public.workspace_members;
create policy members_select on public.workspace_members
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));

drop policy if exists members_insert on public.workspace_members;
create policy members_insert on public.workspace_members
    for insert to authenticated
    with check (
        private.has_workspace_role(workspace_id, 'admin')
        and (role <> 'owner' or private.has_workspace_role(workspace_id, 'owner'))
    );

drop policy if exists members_update on public.workspace_members;
create policy members_update on public.workspace_members
    for update to authenticated
    using (
        private.has_workspace_role(workspace_id, 'admin')
        and (role <> 'owner' or private.has_workspace_role(workspace_id, 'owner'))
    )
    with check (
        private.has_workspace_role(workspace_id, 'admin')
        and (role <> 'owner' or private.has_workspace_role(workspace_id, 'owner'))
    );

drop policy if exists members_delete on public.workspace_members;
create policy members_delete on public.workspace_members
    for delete to authenticated
    using (
        user_id = (select auth.uid())
        or (
            private.has_workspace_role(workspace_id, 'admin')
            and (role <> 'owner' or private.has_workspace_role(workspace_id, 'owner'))
        )
    );

drop policy if exists profiles_select on public.profiles;
create policy profiles_select on public.profiles
    for select to authenticated
    using (id = (select auth.uid()) or private.shares_workspace_with(id));

drop policy if exists profiles_update on public.profiles;
create policy profiles_update on public.profiles
    for update to authenticated
    using (id = (select auth.uid()))
    with check (id = (select auth.uid()));

-- Grants: nothing for anon; what the policies allow for authenticated -------------------

revoke all on public.workspaces, public.workspace_members, public.profiles from anon, public;
grant select, update, delete on public.workspaces to authenticated;
grant select, insert, update, delete on public.workspace_members to authenticated;
grant select, update (full_name, last_active, updated_at) on public.profiles to authenticated;
grant all on public.workspaces, public.workspace_members, public.profiles to service_role;
