import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { imageOrigin } from "./test/shared/imageOrigin.ts";

/** Bindings every in-runtime test project (worker, limits) gets on top of wrangler.toml. */
const testBindings = {
	ENABLE_FAULT_PROCESSORS: "true",
	// Auth has its own tests (with API_KEYS set per request's env).
	AUTH_MODE: "open",
	// Signs task tokens in every object alike (the hub checks them with its own env).
	TOKEN_SECRET: "test-token-secret",
	// Short enough for tests to watch recovery happen.
	QUEUED_RECOVERY_S: "2",
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
		},
	});
}

// Four projects: `worker` runs inside workerd with the real local Queue and Durable Objects;
// `limits` is the same runtime with concurrency limits on (objects read their env from here, so
// limited types need a runtime of their own: every task of a limited type shares its lane);
// `cost` runs the same worker with every billed operation counted (test/cost); `e2e` runs in
// Node and talks real HTTP/WebSocket to a `wrangler dev` it starts itself. `limits` and `cost`
// run after the others: their bursts would load the timing checks beside them.
export default defineConfig({
	test: {
		projects: [
			{
				plugins: [runtime()],
				test: { name: "worker", include: ["test/worker/**/*.test.ts"], testTimeout: 30_000 },
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
							},
							outboundService: "cost-origin",
							workers: [{ name: "cost-origin", modules: true, scriptPath: "./test/cost/origin.js", compatibilityDate: "2026-11-09" }],
						},
					}),
				],
				// Runs after the other projects (groupOrder 1): its 1,000-task burst takes the CPU for minutes,
				// which would slow the timing-sensitive tests running beside it.
				test: { name: "cost", include: ["test/cost/**/*.test.ts"], testTimeout: 120_000, sequence: { groupOrder: 1 } },
			},
			{
				test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], environment: "node", testTimeout: 60_000, hookTimeout: 120_000 },
			},
		],
	},
});
