// Drives a live Jobs API server with the client generated from openapi/openapi.json
// (openapi-typescript types, openapi-fetch calls). Run by .ci/clients.sh:
//   JOBS_URL=http://127.0.0.1:PORT JOBS_TOKEN=... node dist/src/main.js
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/schema.js";

type Job = components["schemas"]["Job"];
type ApiError = components["schemas"]["Error"];

const baseUrl = required("JOBS_URL");
const token = required("JOBS_TOKEN");
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

/** The job of a successful answer, or a thrown error naming the error body. */
function job(answer: { data?: Job; error?: ApiError; response: Response }): Job {
  if (answer.data === undefined) {
    const kind = answer.error?.error.type ?? "no body";
    throw new Error(`HTTP ${answer.response.status}: ${kind}`);
  }
  return answer.data;
}

/** `metadata.progress`, read through the open `Metadata` type: a number, or undefined. */
function progressOf(j: Job): number | undefined {
  const progress: unknown = j.metadata.progress;
  return typeof progress === "number" ? progress : undefined;
}

/** The query of the `rel="next"` target of a `Link` header, if there is one. */
function nextPage(link: string | null): URLSearchParams | undefined {
  const match = link?.match(/<([^>]*)>\s*;\s*rel="next"/);
  return match?.[1] === undefined ? undefined : new URL(match[1], baseUrl).searchParams;
}

async function main(): Promise<void> {
  // Create, then get.
  const created = job(
    await client.POST("/api/jobs", {
      body: { job_type: "job", agent_id: "agent-ts", metadata: { progress: 0 } },
    }),
  );
  check(created.status === "created", "a new job is created");
  check(progressOf(created) === 0, "metadata.progress reads as a number");
  const path = { job_id: created.id };
  const fetched = job(await client.GET("/api/jobs/{job_id}", { params: { path } }));
  check(fetched.id === created.id, "get returns the job");

  // An empty create is a job with every default.
  const empty = job(await client.POST("/api/jobs", {}));
  check(empty.job_type === "job" && empty.metadata !== null, "an empty create works");

  // List two at a time, following Link rel="next" to the end.
  for (let i = 0; i < 3; i++) job(await client.POST("/api/jobs", { body: { agent_id: "agent-ts" } }));
  const seen: string[] = [];
  let query: paths["/api/jobs"]["get"]["parameters"]["query"] = { agent_id: "agent-ts", limit: 2 };
  for (let pages = 0; pages < 10; pages++) {
    const page = await client.GET("/api/jobs", { params: { query } });
    if (page.data === undefined) throw new Error(`list: HTTP ${page.response.status}`);
    seen.push(...page.data.map((j) => j.id));
    const next = nextPage(page.response.headers.get("link"));
    if (next === undefined) break;
    query = {
      agent_id: next.get("agent_id") ?? undefined,
      limit: Number(next.get("limit")),
      before: next.get("before") ?? undefined,
      after: next.get("after") ?? undefined,
    };
  }
  check(seen.length === 4 && new Set(seen).size === 4, "the Link pages list all 4 jobs once");

  // created → pending → running → completed.
  let current = created;
  for (const status of ["pending", "running"] as const) {
    current = job(await client.PATCH("/api/jobs/{job_id}", { params: { path }, body: { status } }));
    check(current.status === status, `the job moved to ${status}`);
  }
  current = job(
    await client.PATCH("/api/jobs/{job_id}", {
      params: { path },
      body: { status: "completed", metadata: { progress: 1 }, total_duration_ns: 1_500_000 },
    }),
  );
  check(current.status === "completed" && current.completed_at !== null, "the job completed");
  check(progressOf(current) === 1, "the final progress is 1");

  // A finished job refuses another transition: 409 with a typed error body.
  const refused = await client.PATCH("/api/jobs/{job_id}", {
    params: { path },
    body: { status: "running" },
  });
  check(refused.response.status === 409, "completed → running is 409");
  const error: ApiError | undefined = refused.error;
  check(error?.error.type === "invalid_job_status_transition", "the error type is typed");
  check(error?.error.details?.current_status === "completed", "details.current_status says why");
  console.log("typescript client: all checks passed");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
