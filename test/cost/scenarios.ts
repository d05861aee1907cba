/**
 * Measuring a scenario: start from a quiet runtime, run it, wait until every task it created
 * has expired (its storage deleted at the TTL) and nothing is awake, and read the meter. The
 * whole life of each task is counted, expiry included; nothing the test does to wait is (it
 * watches the meter, never the API).
 */
import { eventually, sleep } from "../shared/waits";
import { meter, type Usage } from "./meter";
import { dollarsPerMillion, perTask, seedDollarsPerMillion, unitsOf, type BillingUnits } from "./prices";

/** How long the runtime must stay with no object awake to count as quiet. */
const QUIET_MS = 300;

/** Waits until no object has been awake for QUIET_MS. */
export async function quiet(timeoutMs = 120_000): Promise<void> {
	let quietSince = Date.now();
	await eventually(
		async () => {
			if (meter.awakeObjects().length > 0) quietSince = Date.now();
			return Date.now() - quietSince >= QUIET_MS ? true : undefined;
		},
		`no object awake for ${QUIET_MS} ms (awake: ${meter.awakeObjects().slice(0, 5).join(", ")})`,
		timeoutMs,
		25,
	);
}

/**
 * Waits until every task in `ids` has expired (its object deleted its storage), and every object
 * in `objects` (`Class:name`) too.
 */
export async function expired(ids: string[], objects: string[] = [], timeoutMs = 60_000 + ids.length * 200): Promise<void> {
	const keys = [...ids.map((id) => `TaskCoordinator:${id}`), ...objects];
	await eventually(
		async () => (keys.every((key) => meter.deleted.has(key)) ? true : undefined),
		`${keys.length} objects to delete their storage (${keys.filter((key) => !meter.deleted.has(key)).length} left)`,
		timeoutMs,
		50,
	);
}

export interface Measured {
	name: string;
	tasks: number;
	usage: Usage;
	/** Billing units per task (the scenario's total divided by its task count). */
	perTask: BillingUnits;
	/** Dollars per million tasks, by line. */
	dollars: ReturnType<typeof dollarsPerMillion>;
	/** The seed template's cost for the same work on one rented box, per million tasks. */
	seedDollars: number;
}

/**
 * Runs `body` from a quiet runtime and counts everything until its tasks (`ids`) have expired and
 * the runtime is quiet again. `taskSeconds` is the work each task does (for the seed's column).
 */
export async function measure(name: string, ids: string[], taskSeconds: number, body: () => Promise<void>): Promise<Measured> {
	await quiet();
	meter.reset();
	await body();
	await expired(ids);
	await quiet();
	const usage = meter.snapshot();
	const units = perTask(unitsOf(usage), ids.length);
	return {
		name,
		tasks: ids.length,
		usage,
		perTask: units,
		dollars: dollarsPerMillion(units),
		seedDollars: seedDollarsPerMillion(taskSeconds),
	};
}

const n = (v: number, digits = 2) => (Number.isInteger(v) ? String(v) : v.toFixed(digits));

/** The README's cost table for measured scenarios (`taskSeconds` NaN: no seed column for that work). */
export function costTable(rows: Measured[]): string {
	const head =
		"| scenario (per task) | Worker invocations | DO requests | awake, s | rows read | rows written | queue ops | R2 A / B | log events | $ per 1M tasks | of which | without logs | seed on one GPU box, $ per 1M |";
	const sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|";
	const lines = rows.map((r) => {
		const u = r.perTask;
		const d = r.dollars;
		const parts: [string, number][] = [
			["rows written", d.rowsWritten],
			["duration", d.objectDuration],
			["DO requests", d.objectRequests],
			["Worker requests", d.workerRequests],
			["queue", d.queue],
			["R2", d.r2],
			["logs", d.logs],
		];
		const biggest = [...parts]
			.sort((a, b) => b[1] - a[1])
			.filter(([, v]) => v > 0)
			.slice(0, 3)
			.map(([label, v]) => `${label} ${v.toFixed(2)}`)
			.join(", ");
		return `| ${r.name} | ${n(u.workerRequests)} | ${n(u.objectRequests)} | ${n(u.awakeS, 2)} | ${n(u.rowsRead)} | ${n(u.rowsWritten)} | ${n(u.queueOperations)} | ${n(u.r2ClassA)} / ${n(u.r2ClassB)} | ${n(u.logEvents)} | ${d.total.toFixed(2)} | ${biggest} | ${(d.total - d.logs).toFixed(2)} | ${Number.isNaN(r.seedDollars) ? "—" : r.seedDollars.toFixed(0)} |`;
	});
	return [head, sep, ...lines].join("\n");
}

export { sleep };
