-- Tools agents may call: a workspace's settings (fetch allowlist, per-run caps), its
-- per-agent switches and its MCP servers.

create table if not exists public.tool_settings (
    workspace_id uuid primary key references public.workspaces (id) on delete cascade,
    -- Hosts web.fetch may reach (exact names, or "*.example.com" for its subdomains).
    fetch_hosts text[] not null default '{}' check (cardinality(fetch_hosts) <= 100),
    max_calls_per_run integer not null default 30 check (max_calls_per_run between 0 and 1000),
    max_spend_per_run_usd numeric(20, 10) not null default 1
        check (max_spend_per_run_usd between 0 and 1000),
    updated_at timestamptz not null default now()
);

-- A workspace's switch of one tool for one agent; without a row, the agent's capabilities
-- decide.
create table if not exists public.agent_tools (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    agent_code text not null check (agent_code ~ '^[A-Za-z][A-Za-z0-9_-]{1,63}$'),
    tool text not null check (char_length(tool) between 1 and 100),
    enabled boolean not null,
    updated_at timestamptz not null default now(),
    primary key (workspace_id, agent_code, tool)
);

create table if not exists public.mcp_servers (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    name text not null check (name ~ '^[a-z][a-z0-9_-]{0,30}$'),
    url text not null check (url ~ '^https?://' and char_length(url) <= 2000),
    requires_approval boolean not null default true,
    created_at timestamptz not null default now(),
    unique (workspace_id, name)
);

alter table public.tool_settings enable row level security;
alter table public.tool_settings force row level security;
alter table public.agent_tools enable row level security;
alter table public.agent_tools force row level security;
alter table public.mcp_servers enable row level security;
alter table public.mcp_servers force row level security;

drop policy if exists tool_settings_select on public.tool_settings;
create policy tool_settings_select on public.tool_settings
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));
drop policy if exists tool_settings_insert on public.tool_settings;
create policy tool_settings_insert on public.tool_settings
    for insert to authenticated
    with check (private.has_workspace_role(workspace_id, 'admin'));
drop policy if exists tool_settings_update on public.tool_settings;
create policy tool_settings_update on public.tool_settings
    for update to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'))
    with check (private.has_workspace_role(workspace_id, 'admin'));

drop policy if exists agent_tools_select on public.agent_tools;
create policy agent_tools_select on public.agent_tools
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));
drop policy if exists agent_tools_insert on public.agent_tools;
create policy agent_tools_insert on public.agent_tools
    for insert to authenticated
    with check (private.has_workspace_role(workspace_id, 'admin'));
drop policy if exists agent_tools_update on public.agent_tools;
create policy agent_tools_update on public.agent_tools
    for update to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'))
    with check (private.has_workspace_role(workspace_id, 'admin'));

drop policy if exists mcp_servers_select on public.mcp_servers;
create policy mcp_servers_select on public.mcp_servers
    for select to authenticated
    using (private.has_workspace_role(workspace_id, 'viewer'));
drop policy if exists mcp_servers_insert on public.mcp_servers;
create policy mcp_servers_insert on public.mcp_servers
    for insert to authenticated
    with check (private.has_workspace_role(workspace_id, 'admin'));
drop policy if exists mcp_servers_delete on public.mcp_servers;
create policy mcp_servers_delete on public.mcp_servers
    for delete to authenticated
    using (private.has_workspace_role(workspace_id, 'admin'));

revoke all on public.tool_settings, public.agent_tools, public.mcp_servers from anon, public;
grant select on public.tool_settings, public.agent_tools, public.mcp_servers to authenticated;
grant insert (workspace_id, fetch_hosts, max_calls_per_run, max_spend_per_run_usd, updated_at),
    update (fetch_hosts, max_calls_per_run, max_spend_per_run_usd, updated_at)
    on public.tool_settings to authenticated;
grant insert (workspace_id, agent_code, tool, enabled, updated_at),
    update (enabled, updated_at)
    on public.agent_tools to authenticated;
grant insert (workspace_id, name, url, requires_approval), delete
    on public.mcp_servers to authenticated;
grant all on public.tool_settings, public.agent_tools, public.mcp_servers to service_role;
