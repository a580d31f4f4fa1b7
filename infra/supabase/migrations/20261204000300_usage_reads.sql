-- Reading usage as a member: the workspaces where the caller holds a role, found once per
-- statement, instead of a role lookup per usage row. `private.has_workspace_role` is
-- security definer (it reads memberships the caller's own policies may hide), so the
-- planner cannot inline it: over a month of calls the per-row lookup was most of a
-- report's time. The set form is evaluated once (a hashed subplan) and says the same.

create or replace function private.workspaces_with_role(p_min_role text)
returns setof uuid
language sql stable security definer
set search_path = ''
as $$
    select m.workspace_id
    from public.workspace_members m
    where m.user_id = (select auth.uid())
      and private.role_rank(m.role) >= private.role_rank(p_min_role)
$$;

revoke all on function private.workspaces_with_role(text) from public;
grant execute on function private.workspaces_with_role(text) to authenticated, service_role;

drop policy if exists usage_select on public.usage;
create policy usage_select on public.usage
    for select to authenticated
    using (workspace_id in (select private.workspaces_with_role('analyst')));
