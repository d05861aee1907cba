import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { imageOrigin } from "./test/shared/imageOrigin.ts";

// Projects: `worker` runs inside workerd with the real local Queue and Durable Objects;
// `cost` runs the same worker with every billed operation counted (test/cost); `e2e` (and
// `e2e-timing`, first and alone) runs in Node and talks real HTTP/WebSocket to a `wrangler dev`
// it starts itself.
export default defineConfig({
	test: {
		// Every task writes one JSON line when it ends (src/observability/taskEndLog.ts): thousands per run.
		onConsoleLog: (log) => !log.includes('{"event":"task.end"'),
		projects: [
			{
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								ENABLE_FAULT_PROCESSORS: "true",
								// Auth has its own tests (with API_KEYS set per request's env).
								AUTH_MODE: "open",
								// Signs task tokens in every object alike (the hub checks them with its own env).
								TOKEN_SECRET: "test-token-secret",
								// Short enough for tests to watch recovery happen.
								QUEUED_RECOVERY_S: "2",
								// No webhook secret unless a test sets one, whatever a local .dev.vars (made by
								// `npm run dev`) says: the suite must not depend on the developer's machine.
								WEBHOOK_SECRET: "",
								// No task-end log lines in the worker suite: thousands of them, and one written as a
								// file's runtime shuts down races the runner's log channel ("Closing rpc while
								// onUserConsoleLog was pending"). test/e2e/operations reads them from wrangler dev.
								TASK_END_LOGS: "false",
							},
							// The worker's outbound fetches: https://images.edgetask.test is served by the
							// test process (test/shared/imageOrigin.ts); anything else goes out as it would.
							outboundService: imageOrigin,
							// A real local limiter with a small budget, for tests of the 429 path (test/worker/support/limits.ts).
							ratelimits: { TIGHT_SUBMIT_LIMITER: { namespace_id: "9001", simple: { limit: 3, period: 60 } } },
						},
					}),
				],
				test: { name: "worker", include: ["test/worker/**/*.test.ts"], testTimeout: 30_000, sequence: { groupOrder: 1 } },
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
								// As in the worker project: no task-end log lines (a log costs no billed operation).
								TASK_END_LOGS: "false",
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
