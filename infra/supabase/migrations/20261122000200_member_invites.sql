-- Adding a member by email. An admin cannot read auth.users or profiles of people who
-- share no workspace with them (RLS), so the lookup runs as a definer function that checks
-- the caller's role itself, exactly as the policies on workspace_members would.

create or replace function public.add_workspace_member(
    p_workspace_id uuid,
    p_email text,
    p_role text
) returns public.workspace_members
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_user_id uuid;
    v_row public.workspace_members;
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
    select u.id into v_user_id from auth.users u where lower(u.email) = lower(p_email);
    if v_user_id is null then
        return null;
    end if;
    insert into public.workspace_members (workspace_id, user_id, role)
    values (p_workspace_id, v_user_id, p_role)
    returning * into v_row;
    return v_row;
end;
$$;

revoke all on function public.add_workspace_member(uuid, text, text) from public, anon;
grant execute on function public.add_workspace_member(uuid, text, text) to authenticated;
