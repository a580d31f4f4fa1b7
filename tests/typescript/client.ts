// A front end's first steps, typed by the client openapi-typescript generates from the
// API document (api.d.ts): sign up, create a workspace, list agents, start a run and read
// it, and a typed problem for a run that does not exist. Prints a JSON summary.
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

const api = createClient<paths>({ baseUrl: process.env.GATEWAY_URL });

function fail(what: string, detail: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

async function main(): Promise<void> {
  const email = `ts-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const signup = await api.POST("/auth/signup", {
    body: { email, password: "a typed client's password" },
  });
  const token = signup.data?.session?.access_token ?? fail("sign-up", signup.error);
  const auth = { Authorization: `Bearer ${token}` };

  const made = await api.POST("/workspaces", { body: { name: "Typed" }, headers: auth });
  const workspace = made.data?.id ?? fail("workspace", made.error);
  const header = { "X-Workspace-Id": workspace };

  const agents = await api.GET("/agents", {
    params: { header, query: { limit: 5 } },
    headers: auth,
  });
  const agent = agents.data?.items[0]?.code ?? fail("agents", agents.error);

  const started = await api.POST("/runs", {
    params: { header },
    headers: auth,
    body: {
      kind: "single",
      title: "From TypeScript",
      input: "A tagline for a bakery.",
      nodes: [{ key: "write", agent }],
    },
  });
  const runId = started.data?.run.id ?? fail("run", started.error);

  const run = await api.GET("/runs/{run_id}", {
    params: { header, path: { run_id: runId } },
    headers: auth,
  });
  const steps = run.data?.steps ?? fail("run detail", run.error);

  const missing = await api.GET("/runs/{run_id}", {
    params: { header, path: { run_id: "00000000-0000-4000-8000-000000000000" } },
    headers: auth,
  });
  const problem = missing.error ?? fail("missing run", missing.data);

  console.log(
    JSON.stringify({
      agents: agents.data?.items.length,
      run_status: run.data?.status,
      steps: steps.map((s) => s.key),
      missing: { status: missing.response.status, title: problem.title },
    }),
  );
}

await main();
