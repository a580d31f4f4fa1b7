// The reference console: a thin client of the public API, with no build step.
// Auth goes to Supabase Auth through supabase-js; everything else is fetch() against the
// API gateway (bearer token + X-Workspace-Id) and EventSource streams opened with tickets.

const config = window.GUILDSTACK_CONFIG;
const auth = window.supabase.createClient(config.supabaseUrl, config.anonKey, {
  auth: { persistSession: false, autoRefreshToken: true },
});
const $ = (id) => document.getElementById(id);
const state = { session: null, workspace: null, source: null, discussion: null };

// Workflows a user can start from the console (the same shapes `POST /runs` takes).
const TEMPLATES = {
  "Release notes, approved before publishing": (input) => ({
    kind: "pipeline",
    title: "Release notes",
    input,
    nodes: [
      { key: "draft", agent: "product_owner", prompt: "Draft the release notes." },
      { key: "publish", agent: "senior_reviewer", requires_approval: true },
    ],
  }),
  "Launch plan (specialists in parallel)": (input) => ({
    kind: "dag",
    title: "Launch plan",
    input,
    nodes: [
      { key: "frame", agent: "business_agent" },
      { key: "page", agent: "design_agent", depends_on: ["frame"] },
      { key: "keywords", agent: "seo_agent", depends_on: ["frame"] },
      { key: "plan", agent: "nicole_core", depends_on: ["page", "keywords"] },
    ],
  }),
  "Ask me first": (input) => ({
    kind: "single",
    title: "Needs input",
    input: `${input} [ask]`,
    nodes: [{ key: "plan", agent: "business_agent" }],
  }),
};

function say(text) {
  $("status").textContent = text;
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.session.access_token}` };
  if (state.workspace) headers["X-Workspace-Id"] = state.workspace;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${config.api}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(`${response.status} ${problem.title ?? ""}: ${problem.detail ?? ""}`);
  }
  return response.status === 204 ? null : response.json();
}

function guarded(handler) {
  return async (...args) => {
    try {
      say("");
      await handler(...args);
    } catch (error) {
      say(error.message);
    }
  };
}

// Account ------------------------------------------------------------------------------

async function signedIn(session) {
  state.session = session;
  $("who").textContent = session.user.email;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  $("workspace-panel").hidden = false;
  await loadWorkspaces();
}

async function signUp() {
  const { data, error } = await auth.auth.signUp({
    email: $("email").value,
    password: $("password").value,
  });
  if (error) throw error;
  if (!data.session) throw new Error("Signed up; sign in to continue.");
  await signedIn(data.session);
}

async function signIn() {
  const { data, error } = await auth.auth.signInWithPassword({
    email: $("email").value,
    password: $("password").value,
  });
  if (error) throw error;
  await signedIn(data.session);
}

async function updatePassword() {
  const { error } = await auth.auth.updateUser({ password: $("new-password").value });
  if (error) throw error;
  say("Password changed.");
}

async function signOut() {
  const { error } = await auth.auth.signOut();
  if (error) throw error;
  Object.assign(state, { session: null, workspace: null });
  state.source?.close();
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("workspace-panel").hidden = true;
  $("work").hidden = true;
  say("Signed out.");
}

// Workspaces, agents, usage -----------------------------------------------------------

async function loadWorkspaces(select) {
  const { items } = await api("GET", "/workspaces");
  $("workspaces").replaceChildren(
    ...items.map((w) => new Option(`${w.name}`, w.id, false, w.id === select)),
  );
  if (items.length) await useWorkspace(select ?? items[0].id);
}

async function createWorkspace() {
  const made = await api("POST", "/workspaces", {
    name: $("workspace-name").value || "My workspace",
    monthly_budget_usd: 25,
  });
  await loadWorkspaces(made.id);
}

async function useWorkspace(id) {
  state.workspace = id;
  $("work").hidden = false;
  const agents = await api("GET", "/agents?limit=200");
  $("agents").replaceChildren(
    ...agents.items.map((a) => {
      const li = document.createElement("li");
      li.textContent = a.name ?? a.code;
      li.title = a.description ?? "";
      return li;
    }),
  );
  await showUsage();
}

async function showUsage() {
  const usage = await api("GET", "/usage");
  const budget = usage.budget ?? {};
  const limit = budget.monthly_usd == null ? "no budget" : `$${budget.monthly_usd}`;
  $("usage").textContent = `Spent $${(budget.spent_usd ?? 0).toFixed(4)} of ${limit} this month.`;
}

// Streams ------------------------------------------------------------------------------

async function openStream(path, onEvent) {
  const { ticket, stream } = await api("POST", `${path}/stream-ticket`);
  const source = new EventSource(`${config.stream}${stream}?ticket=${encodeURIComponent(ticket)}`);
  source.onmessage = (e) => onEvent(JSON.parse(e.data));
  // Named events (`event: run.finished`, ...) need their own listeners.
  return source;
}

function listen(source, types, onEvent) {
  for (const type of types) source.addEventListener(type, (e) => onEvent(JSON.parse(e.data)));
}

// Runs ---------------------------------------------------------------------------------

const RUN_EVENTS = [
  "run.created", "run.status", "run.finished", "step.added", "step.queued", "step.started",
  "step.succeeded", "step.failed", "step.deferred", "step.skipped", "step.dead",
  "approval.requested", "approval.decided", "question.asked", "question.answered",
];

async function startRun() {
  const build = TEMPLATES[$("template").value];
  const { run } = await api("POST", "/runs", build($("run-input").value || "A bakery"));
  $("run-id").textContent = run.id;
  $("run-status").textContent = run.status;
  $("events").replaceChildren();
  state.source?.close();
  const source = await openStream(`/runs/${run.id}`, () => {});
  state.source = source;
  listen(source, RUN_EVENTS, guarded(async (event) => {
    const li = document.createElement("li");
    li.textContent = `${event.id} ${event.type} ${event.payload.step ?? event.payload.status ?? ""}`;
    $("events").append(li);
    if (event.type === "approval.requested") await showApprovals(run.id);
    if (event.type === "question.asked") await showQuestions(run.id);
    if (event.type === "run.status" || event.type === "run.finished") {
      $("run-status").textContent = event.payload.status;
    }
    if (event.type === "run.finished") {
      source.close();
      await showUsage();
    }
  }));
}

async function showApprovals(runId) {
  const { items } = await api("GET", "/approvals?status=pending");
  $("approvals").replaceChildren(
    ...items.filter((a) => a.run_id === runId).map((a) => {
      const card = document.createElement("div");
      card.className = "card approval";
      card.textContent = `Step "${a.step_key}" waits for your approval. `;
      for (const decision of ["approve", "reject"]) {
        const button = document.createElement("button");
        button.textContent = decision === "approve" ? "Approve" : "Reject";
        button.className = decision;
        button.onclick = guarded(async () => {
          await api("POST", `/approvals/${a.id}`, { decision });
          card.remove();
        });
        card.append(button);
      }
      return card;
    }),
  );
}

async function showQuestions(runId) {
  const { items } = await api("GET", "/questions?status=pending");
  $("questions").replaceChildren(
    ...items.filter((q) => q.run_id === runId).map((q) => {
      const card = document.createElement("div");
      card.className = "card question";
      const input = document.createElement("input");
      input.placeholder = "your answer";
      const button = document.createElement("button");
      button.textContent = "Answer";
      button.onclick = guarded(async () => {
        await api("POST", `/questions/${q.id}`, { answer: input.value || "Yes" });
        card.remove();
      });
      card.append(`${q.question} `, input, button);
      return card;
    }),
  );
}

// Chat: the reply streams in the POST's own response (fetch + a stream reader). -----------

async function sendChat() {
  const response = await fetch(`${config.stream}/chat/message`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${state.session.access_token}`,
      "X-Workspace-Id": state.workspace,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ content: $("chat-input").value, conversation_id: state.chat }),
  });
  if (!response.ok) {
    const problem = await response.json();
    throw new Error(`${response.status} ${problem.title}: ${problem.detail}`);
  }
  $("chat-reply").textContent = "";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const type = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (!type || !data) continue;
      const payload = JSON.parse(data);
      if (type === "meta") {
        state.chat = payload.conversation_id;
        if (payload.routing) {
          const agents = payload.routing.agents.map((a) => `${a.code} ${a.confidence}`);
          $("chat-meta").textContent = `routed by ${payload.routing.method}: ${agents.join(", ")}`;
        }
      } else if (type === "token") {
        $("chat-reply").textContent += payload.text;
      } else if (type === "done") {
        $("chat-reply").dataset.done = "true";
        await showUsage();
      } else if (type === "error") {
        throw new Error(`${payload.title}: ${payload.detail}`);
      }
    }
  }
}

// Discussions --------------------------------------------------------------------------

const CONVERSATION_EVENTS = [
  "message.new", "agent.typing", "agent.response.complete", "status.changed", "consensus.reached",
];

async function startDiscussion() {
  const topic = $("discussion-topic").value || "Which city should we launch in first?";
  const made = await api("POST", "/conversations", {
    mode: "discussion",
    title: topic,
    goal: topic,
    settings: { max_rounds: 2 },
  });
  await api("POST", `/conversations/${made.id}/start`);
  $("discussion-log").replaceChildren();
  $("discussion-status").textContent = "active";
  state.discussion?.close();
  const source = await openStream(`/conversations/${made.id}`, () => {});
  state.discussion = source;
  listen(source, CONVERSATION_EVENTS, (event) => {
    const payload = event.payload;
    if (event.type === "message.new") {
      const li = document.createElement("li");
      li.textContent = `${payload.sender_id ?? payload.sender_kind}: ${payload.content ?? ""}`;
      $("discussion-log").append(li);
    }
    if (event.type === "status.changed") {
      $("discussion-status").textContent = payload.to;
      if (payload.to === "completed") source.close();
    }
  });
}

// Wiring -------------------------------------------------------------------------------

$("template").replaceChildren(...Object.keys(TEMPLATES).map((name) => new Option(name, name)));
$("signup").onclick = guarded(signUp);
$("signin").onclick = guarded(signIn);
$("update-password").onclick = guarded(updatePassword);
$("signout").onclick = guarded(signOut);
$("create-workspace").onclick = guarded(createWorkspace);
$("workspaces").onchange = guarded((e) => useWorkspace(e.target.value));
$("start-run").onclick = guarded(startRun);
$("chat-send").onclick = guarded(sendChat);
$("discussion-start").onclick = guarded(startDiscussion);
