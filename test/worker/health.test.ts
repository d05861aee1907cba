import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { statsShard, type StatusReport } from "../../src/health/StatsShard";
import { toSpec } from "../../src/api/tasks";
import { eventually, sleep } from "../shared/waits";
import { call, getTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import { runInObject, storedState, taskStub } from "./support/objects";

/** HEALTH_SHARDS in wrangler.toml. */
const HEALTH_SHARDS = 16;

interface Health {
	status: string;
	queue_size: number;
	running: number;
	results_pending: number;
	by_status: Record<string, number>;
}

async function health(): Promise<Health> {
	const { res, body } = await call<Health>("/health");
	expect(res.status).toBe(200);
	return body;
}

/** Polls /health until `ok` holds; counts are reported off the request path, so they lag a little. */
function healthUntil(ok: (h: Health) => boolean, what: string): Promise<Health> {
	return eventually(
		async () => {
			const h = await health();
			return ok(h) ? h : undefined;
		},
		what,
		10_000,
		100,
	);
}

it("answers with the seed's fields and consistent counts", async () => {
	const h = await health();
	expect(h.status).toBe("ok");
	for (const field of ["queue_size", "running", "results_pending"] as const) {
		expect(Number.isInteger(h[field]) && h[field] >= 0, field).toBe(true);
	}
	expect(h.queue_size).toBe(h.by_status.queued);
	expect(h.running).toBe(h.by_status.running);
	const b = h.by_status;
	expect(h.results_pending).toBe((b.succeeded ?? 0) + (b.failed ?? 0) + (b.canceled ?? 0) + (b.timed_out ?? 0));
});

// Counts are global to the run, so the test compares against a baseline taken first.
it("counts running tasks while they run, then their results", async () => {
	const base = await health();
	const ids = [newId(), newId(), newId()];
	for (const id of ids) await submitTask({ id, type: "sleep", input: { ms: 2500 } });

	await healthUntil((h) => h.running >= base.running + 3, "3 more running tasks");

	for (const id of ids) expect((await settled(id)).status).toBe("succeeded");
	const after = await healthUntil(
		(h) => h.results_pending >= base.results_pending + 3 && h.running <= base.running,
		"3 more results and the running count back down",
	);
	expect(after.running).toBe(base.running);
});

it("counts a burst of tasks that end together exactly once each, in the shard of their creation second", async () => {
	const base = await health();
	const ids = Array.from({ length: 30 }, () => newId());
	const results = await Promise.all(ids.map((id) => submitTask({ id, type: "echo", input: id }, { wait: 10 })));
	for (const { body } of results) expect(body.status).toBe("succeeded");

	const after = await healthUntil((h) => h.results_pending >= base.results_pending + 30, "30 more results");
	expect(after.results_pending).toBe(base.results_pending + 30);
	expect({ queued: after.queue_size, running: after.running }).toEqual({ queued: base.queue_size, running: base.running });
	// Tasks created in the same second share a shard (so their reports share calls): a burst
	// lands in one shard, or two if it straddles a second, and each task is counted once.
	const held: number[] = [];
	for (let i = 0; i < HEALTH_SHARDS; i++) {
		const n = await runInDurableObject(
			statsShard(env, i),
			(_instance, state) => ids.filter((id) => state.storage.sql.exec("SELECT 1 FROM tasks WHERE id = ?", id).toArray().length > 0).length,
		);
		if (n > 0) held.push(n);
	}
	expect(held.reduce((a, b) => a + b, 0)).toBe(30);
	expect(held.length).toBeLessThanOrEqual(2);
});

it("counts a task waiting for its message in queue_size", async () => {
	const base = await health();
	const id = newId();
	// Stored without a message: it stays queued until its object re-sends one (2 s in tests).
	await taskStub(id).create(await toSpec(env, { id, type: "echo", input: null }));

	await healthUntil((h) => h.queue_size >= base.queue_size + 1, "one more queued task");
	expect((await settled(id)).status).toBe("succeeded");
	await healthUntil((h) => h.queue_size <= base.queue_size, "the queued count back down");
});

it("stops counting a task once its TTL has deleted it", async () => {
	const id = newId();
	const { body } = await submitTask({ id, type: "echo", input: 1, ttl_s: 1 }, { wait: 10 });
	expect(body.status).toBe("succeeded");
	// The task reports to its isolate's shard; look in every shard.
	const row = async () => {
		for (let i = 0; i < HEALTH_SHARDS; i++) {
			const status = await runInDurableObject(
				statsShard(env, i),
				(_instance, state) =>
					state.storage.sql.exec<{ status: string }>("SELECT status FROM tasks WHERE id = ?", id).toArray()[0]?.status ?? null,
			);
			if (status !== null) return status;
		}
		return null;
	};

	await eventually(async () => ((await row()) === "succeeded" ? true : undefined), "the shard to count the result", 5000);
	await sleep(Date.parse(body.finished_at ?? "") + 1100 - Date.now());
	await runDurableObjectAlarm(taskStub(id));
	expect((await getTask(id)).res.status).toBe(404);
	await eventually(async () => ((await row()) === null ? true : undefined), "the shard to forget the expired task", 5000);
});

it("retries the report sent at expiry until the shard acknowledges it: a shard call that fails once does not leave the task counted", async () => {
	const id = newId();
	const { body } = await submitTask({ id, type: "echo", input: 1, ttl_s: 1 }, { wait: 10 });
	expect(body.status).toBe("succeeded");
	const shard = (await storedState(id)).record?.healthShard;
	if (shard === undefined) throw new Error("the task names no health shard");
	const row = () =>
		runInDurableObject(
			statsShard(env, shard),
			(_instance, state) =>
				state.storage.sql.exec<{ status: string }>("SELECT status FROM tasks WHERE id = ?", id).toArray()[0]?.status ?? null,
		);
	await eventually(async () => ((await row()) === "succeeded" ? true : undefined), "the shard to count the result", 5000);

	// The shard's next call carrying this task's expiry fails, once.
	let failures = 0;
	const restore = await runInObject(statsShard(env, shard), (instance) => {
		type ReportMany = (this: unknown, reports: StatusReport[]) => unknown;
		const proto = Object.getPrototypeOf(instance) as { reportMany: ReportMany };
		const original = proto.reportMany;
		proto.reportMany = function (this: unknown, reports: StatusReport[]) {
			if (failures === 0 && reports.some((r) => r.id === id && r.status === null)) {
				failures += 1;
				throw new Error("injected: the shard call failed");
			}
			return original.call(this, reports);
		};
		return () => void (proto.reportMany = original);
	});
	try {
		// The task's alarm at its expiry sends the report, which fails.
		await eventually(async () => (failures === 1 ? true : undefined), "the expiry report to fail", 10_000, 10);
		// Not acknowledged: the task is kept (and still counted) until the shard has its expiry…
		expect(await row()).toBe("succeeded");
		expect((await getTask(id)).res.status).toBe(200);
		// …which the task's alarm sends again, 2 s later.
		await eventually(async () => ((await row()) === null ? true : undefined), "the shard to forget the expired task", 10_000);
		await eventually(async () => ((await getTask(id)).res.status === 404 ? true : undefined), "the task to be deleted", 5000);
	} finally {
		restore();
	}
});
