/**
 * Cloudflare's published prices (Workers Paid, Standard usage model) for what the meter counts,
 * free allowances left out, and the dollars a counted usage costs per million tasks.
 *
 * Read 2026-11-30 from Cloudflare's docs (the cloudflare/cloudflare-docs sources of):
 * - https://developers.cloudflare.com/workers/platform/pricing/  (Workers requests, CPU, R2)
 * - https://developers.cloudflare.com/durable-objects/platform/pricing/  (requests, duration,
 *   SQLite rows; "each setAlarm() is billed as a single row written", "deletes are counted as
 *   rows written", 20 incoming WebSocket messages bill as one request, 128 MB per object)
 * - https://developers.cloudflare.com/queues/platform/pricing/  (per 64 KB written, read, deleted)
 * - https://developers.cloudflare.com/workers/observability/logs/workers-logs/  (Workers Logs, on
 *   in wrangler.toml's [observability]: $0.60 per million events past 20 million a month; "each
 *   Workers invocation returns a single execution log", for fetch, queue, RPC, alarm and
 *   WebSocket handlers alike, and every console line is an event of its own; read 2026-11-30)
 */
import type { Usage } from "./meter";

export const PRICES_READ_ON = "2026-11-30";

export const PRICE = {
	/** Per Worker invocation (fetch, queue batch): $0.30 per million. */
	workerRequest: 0.3 / 1e6,
	/** Per Worker CPU millisecond: $0.02 per million. */
	workerCpuMs: 0.02 / 1e6,
	/** Per Durable Object request (RPC call, fetch, alarm; 20 incoming WebSocket messages): $0.15 per million. */
	objectRequest: 0.15 / 1e6,
	/** Per GB-second of Durable Object duration: $12.50 per million. */
	objectGbSecond: 12.5 / 1e6,
	/** Memory billed per object, in GB (128 MB, counted as the docs' own examples do: 128 MB / 1 GB). */
	objectGb: 0.128,
	/** Per SQLite row read: $0.001 per million. */
	rowRead: 0.001 / 1e6,
	/** Per SQLite row written: $1.00 per million. */
	rowWritten: 1.0 / 1e6,
	/** Per queue operation (64 KB written, read or deleted): $0.40 per million. */
	queueOperation: 0.4 / 1e6,
	/** R2 class A (writes, lists): $4.50 per million; class B (reads): $0.36 per million. */
	r2ClassA: 4.5 / 1e6,
	r2ClassB: 0.36 / 1e6,
	/** Per Workers Logs event (an invocation's execution log, a console line): $0.60 per million. */
	logEvent: 0.6 / 1e6,
} as const;

/** Incoming WebSocket messages that bill as one Durable Object request. */
export const WS_MESSAGES_PER_REQUEST = 20;

/** The billing units of a usage, summed over classes. */
export interface BillingUnits {
	workerRequests: number;
	objectRequests: number;
	/** Incoming WebSocket messages (already in objectRequests at 20:1). */
	wsIncoming: number;
	objectGbSeconds: number;
	awakeS: number;
	rowsRead: number;
	rowsWritten: number;
	queueOperations: number;
	r2ClassA: number;
	r2ClassB: number;
	/** Workers Logs events: one execution log per invocation (Worker or object, WebSocket messages included) and one per console line. */
	logEvents: number;
}

export function unitsOf(u: Usage): BillingUnits {
	let objectRequests = 0;
	let wsIncoming = 0;
	let awakeMs = 0;
	let rowsRead = 0;
	let rowsWritten = 0;
	let objectInvocations = 0;
	for (const c of Object.values(u.classes)) {
		const calls = Object.values(c.rpc).reduce((a, b) => a + b, 0) + c.fetches + c.alarms;
		objectRequests += calls;
		objectInvocations += calls + c.wsIncoming;
		wsIncoming += c.wsIncoming;
		awakeMs += c.awakeMs;
		rowsRead += c.rowsRead;
		rowsWritten += c.rowsWritten + c.storageWrites;
	}
	objectRequests += wsIncoming / WS_MESSAGES_PER_REQUEST;
	return {
		workerRequests: u.worker.fetch + u.worker.queue,
		objectRequests,
		wsIncoming,
		objectGbSeconds: (awakeMs / 1000) * PRICE.objectGb,
		awakeS: awakeMs / 1000,
		rowsRead,
		rowsWritten,
		queueOperations: u.queue.writes + u.queue.reads + u.queue.deletes,
		r2ClassA: u.r2.classA,
		r2ClassB: u.r2.classB,
		logEvents: u.worker.fetch + u.worker.queue + objectInvocations + u.logLines,
	};
}

/** Units divided by `n` (a burst's per-task share). */
export function perTask(units: BillingUnits, n: number): BillingUnits {
	const out = { ...units };
	for (const k of Object.keys(out) as (keyof BillingUnits)[]) out[k] = units[k] / n;
	return out;
}

/** Dollars per million tasks, by line. */
export interface Dollars {
	workerRequests: number;
	objectRequests: number;
	objectDuration: number;
	rowsRead: number;
	rowsWritten: number;
	queue: number;
	r2: number;
	/** Workers Logs (the [observability] wrangler.toml turns on). */
	logs: number;
	total: number;
}

/** Dollars per million tasks, by line, for per-task units (Worker CPU not included: see `cpuDollarsPerMillion`). */
export function dollarsPerMillion(units: BillingUnits): Dollars {
	const lines = {
		workerRequests: units.workerRequests * PRICE.workerRequest * 1e6,
		objectRequests: units.objectRequests * PRICE.objectRequest * 1e6,
		objectDuration: units.objectGbSeconds * PRICE.objectGbSecond * 1e6,
		rowsRead: units.rowsRead * PRICE.rowRead * 1e6,
		rowsWritten: units.rowsWritten * PRICE.rowWritten * 1e6,
		queue: units.queueOperations * PRICE.queueOperation * 1e6,
		r2: (units.r2ClassA * PRICE.r2ClassA + units.r2ClassB * PRICE.r2ClassB) * 1e6,
		logs: units.logEvents * PRICE.logEvent * 1e6,
	};
	return { ...lines, total: Object.values(lines).reduce((a, b) => a + b, 0) };
}

/** Dollars per million tasks for `cpuMsPerTask` of Worker CPU. */
export function cpuDollarsPerMillion(cpuMsPerTask: number): number {
	return cpuMsPerTask * PRICE.workerCpuMs * 1e6;
}

/**
 * The seed template on one rented GPU box: it runs one task at a time, so each task holds the
 * whole box for its duration. Assumed: an on-demand A100 80 GB pod at $1.59 an hour (RunPod's
 * list price for "Pods - A100 PCIe", runpod.io/pricing, as transcribed 2026-10-07), kept busy
 * back to back (no idle time, which only makes the box dearer per task).
 */
export const SEED_BOX_PER_HOUR = 1.59;

export function seedDollarsPerMillion(taskSeconds: number): number {
	return (SEED_BOX_PER_HOUR / 3600) * taskSeconds * 1e6;
}
