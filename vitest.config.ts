import { execFileSync } from "node:child_process";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { imageOrigin } from "./test/shared/imageOrigin.ts";
import { KEYED_API_KEYS } from "./test/worker-keyed/keys";
import { WORKER_WEBHOOK_SECRET } from "./test/setup/workerGlobalSetup";

// Projects: `worker` runs inside workerd with the real local Queue and Durable Objects;
// `worker-keyed` is the same runtime configured closer to a deployment (see below); `limits` is
// the same runtime with concurrency limits on (objects read their env from here, so limited types
// need a runtime of their own: every task of a limited type shares its lane); `worker-load` holds
// a thousand tasks and sockets, after the rest; `cost` runs the same worker with every billed
// operation counted (test/cost); `e2e` (and `e2e-timing`, first and alone) runs in Node and talks
// real HTTP/WebSocket to a `wrangler dev` it starts itself.

/** Bindings every in-runtime test project (worker, limits, worker-load) gets on top of wrangler.toml. */
const testBindings = {
	ENABLE_FAULT_PROCESSORS: "true",
	// Auth has its own tests (with API_KEYS set per request's env).
	AUTH_MODE: "open",
	// Signs task tokens in every object alike (the hub checks them with its own env).
	TOKEN_SECRET: "test-token-secret",
	// Short enough for tests to watch recovery happen.
	QUEUED_RECOVERY_S: "2",
	// Webhooks go to the receiver of test/setup/workerGlobalSetup.ts, signed with a plain-string
	// secret; retries come fast enough to watch all six attempts.
	WEBHOOK_SECRET: WORKER_WEBHOOK_SECRET,
	WEBHOOK_RETRY_BASE_S: "0.3",
	// No task-end log lines in these suites: thousands of them, and one written as a file's runtime
	// shuts down races the runner's log channel ("Closing rpc while onUserConsoleLog was pending").
	// test/e2e/operations reads them from wrangler dev.
	TASK_END_LOGS: "false",
};

/** The worker in the runtime, with `bindings` on top of testBindings. */
function runtime(bindings: Record<string, unknown> = {}) {
	return cloudflareTest({
		wrangler: { configPath: "./wrangler.toml" },
		miniflare: {
			bindings: { ...testBindings, ...bindings },
			// The worker's outbound fetches: https://images.edgetask.test is served by the
			// test process (test/shared/imageOrigin.ts); anything else goes out as it would.
			outboundService: imageOrigin,
			// A real local limiter with a small budget, for tests of the 429 path (test/worker/support/limits.ts).
			ratelimits: { TIGHT_SUBMIT_LIMITER: { namespace_id: "9001", simple: { limit: 3, period: 60 } } },
		},
	});
}

// The dashboard's files, a module of the Worker (src/api/routes/dashboardFiles.js), must exist
// before the runtime loads it; wrangler builds them itself for `dev` and `deploy`.
execFileSync(process.execPath, ["scripts/buildDashboard.mjs"], { stdio: "inherit" });

export default defineConfig({
	test: {
		// Every task writes one JSON line when it ends (src/observability/taskEndLog.ts): thousands per run.
		onConsoleLog: (log) => !log.includes('{"event":"task.end"'),
		projects: [
			{
				plugins: [runtime()],
				test: {
					name: "worker",
					include: ["test/worker/**/*.test.ts"],
					testTimeout: 30_000,
					globalSetup: ["./test/setup/workerGlobalSetup.ts"],
					sequence: { groupOrder: 1 },
				},
			},
			{
				plugins: [
					runtime({
						// A table, as wrangler.toml gives it (the JSON-string form: worker/config-object-vars, e2e/limits).
						CONCURRENCY: { sleep: 2, flaky: 1, fail: 1, hang: 1 },
						// A head start short enough for a test to outlast it.
						PRIORITY_OFFSET_S: "2",
					}),
				],
				test: {
					name: "limits",
					include: ["test/limits/**/*.test.ts"],
					testTimeout: 60_000,
					hookTimeout: 60_000,
					sequence: { groupOrder: 1 },
				},
			},
			{
				// The same runtime, holding a thousand tasks and sockets at once: last (groupOrder 3, after
				// cost), so that its load slows none of the other suites.
				plugins: [runtime()],
				test: { name: "worker-load", include: ["test/worker-load/**/*.test.ts"], testTimeout: 300_000, sequence: { groupOrder: 3 } },
			},
			{
				// The worker with every billed operation counted (test/cost/entry.ts wraps src/index.ts).
				plugins: [
					cloudflareTest({
						main: "./test/cost/entry.ts",
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// AsyncLocalStorage: the meter attributes timers and fetches to the object that started them.
							compatibilityFlags: ["nodejs_als"],
							// A 1,000-task burst saturates the local runtime for minutes; messages that are only late
							// must not be re-sent as lost (a deployed queue delivers in milliseconds).
							// One pull type for the pull-worker scenario (its workers heartbeat every 20 s), and one
							// origin for the http scenario: test/cost/origin.ts, which gets the worker's outbound fetches.
							bindings: {
								AUTH_MODE: "open",
								QUEUED_RECOVERY_S: "600",
								// The files scenario counts an upload to its deletion: it outlives its task by 1 s.
								UPLOAD_TTL_S: "1",
								WORKER_TYPES: JSON.stringify({ gpu: { lease_s: 60 } }),
								ORIGINS: JSON.stringify({ model: { url: "http://model.cost.test", concurrency: 10, timeout_s: 120 } }),
								// Task-end log lines on, as deployed: each is a billed Workers Logs event. The meter counts
								// them and keeps them out of the output (test/cost/instrument.ts installLogCount).
								TASK_END_LOGS: "true",
							},
							outboundService: "cost-origin",
							workers: [{ name: "cost-origin", modules: true, scriptPath: "./test/cost/origin.js", compatibilityDate: "2026-11-09" }],
						},
					}),
				],
				// Runs after the other projects (groupOrder 2): its 1,000-task burst takes the CPU for minutes,
				// which would slow the timing-sensitive tests running beside it.
				test: { name: "cost", include: ["test/cost/**/*.test.ts"], testTimeout: 120_000, sequence: { groupOrder: 2 } },
			},
			{
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								ENABLE_FAULT_PROCESSORS: "true",
								// API keys and no TOKEN_SECRET, in every object alike: task tokens are signed with the
								// key derived from API_KEYS, by the worker and by the hubs.
								AUTH_MODE: "required",
								API_KEYS: KEYED_API_KEYS.join(","),
								// Long enough that no recovery re-send runs during a test.
								QUEUED_RECOVERY_S: "120",
							},
							// A message whose hand-over fails is retried once, then dead-lettered (wrangler.toml: 10
							// retries, over five minutes of backoff): the dead-letter route runs end to end.
							queueConsumers: {
								"edgetask-tasks": { maxBatchSize: 100, maxBatchTimeout: 0, maxRetries: 1, deadLetterQueue: "edgetask-dlq" },
							},
						},
					}),
				],
				test: { name: "worker-keyed", include: ["test/worker-keyed/**/*.test.ts"], testTimeout: 60_000, sequence: { groupOrder: 1 } },
			},
			{
				// Timing assertions (each task back at its own duration) run first and alone (groupOrder 0):
				// beside the other suites' servers, browsers and Python processes, a 2-core machine stalls
				// the runtime's thread for whole seconds, and that is the machine, not head-of-line blocking.
				test: {
					name: "e2e-timing",
					include: ["test/e2e/pipeline.test.ts"],
					environment: "node",
					testTimeout: 60_000,
					hookTimeout: 120_000,
					sequence: { groupOrder: 0 },
				},
			},
			{
				test: {
					name: "e2e",
					include: ["test/e2e/**/*.test.ts"],
					exclude: ["test/e2e/pipeline.test.ts"],
					environment: "node",
					testTimeout: 60_000,
					hookTimeout: 120_000,
					sequence: { groupOrder: 1 },
				},
			},
		],
	},
});
