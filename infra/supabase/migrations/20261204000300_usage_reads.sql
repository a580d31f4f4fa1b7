-- Reading usage as a member: the workspaces where the caller holds a role, found once per
-- statement (`private.member_workspace_ids`, as the memory policies do), instead of a role
-- lookup per usage row. `private.has_workspace_role` is security definer, so the planner
-- cannot inline it: over a month of calls the per-row lookup was most of a report's time.

drop policy if exists usage_select on public.usage;
create policy usage_select on public.usage
    for select to authenticated
    using (workspace_id in (select private.member_workspace_ids('analyst')));
