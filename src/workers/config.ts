import { z } from "zod";
import { objectVar } from "../config";

/**
 * `WORKER_TYPES`: task types that never run inside the Worker. Their tasks wait (status
 * `queued`, with `queue_position`) until an external worker leases them over `/v1/work`.
 *
 * ```toml
 * [vars.WORKER_TYPES]
 * resize = { lease_s = 60, max_attempts = 3, timeout_s = 900 }
 * ```
 * or, as `wrangler dev --var` gives it, the same as a JSON string. An entry may carry `input`,
 * a JSON Schema that submissions are validated against. A bad value is a ConfigError (500
 * `invalid_config` naming the problem) on every request that needs it.
 */
export interface WorkerType {
	/** How long a lease lasts without a heartbeat. Workers heartbeat every third of it. */
	leaseS: number;
	/** Attempts in all, retries included; a lapsed lease counts as one. */
	maxAttempts: number;
	/** Deadline of one attempt (from its lease), unless the task sets `timeout_s`. */
	timeoutS: number;
	/** Validates the input at submit; null: any JSON. */
	input: z.ZodType | null;
}

const Entry = z
	.strictObject({
		lease_s: z.number().min(1).max(3600).default(60),
		max_attempts: z.number().int("must be a whole number").min(1).max(100).default(3),
		timeout_s: z.number().positive().max(900).default(900),
		input: z.union([z.record(z.string(), z.json()), z.boolean()]).optional(),
	})
	.transform((entry, ctx): WorkerType => {
		let input: z.ZodType | null = null;
		if (entry.input !== undefined) {
			try {
				input = z.fromJSONSchema(entry.input);
			} catch (e) {
				ctx.addIssue({ code: "custom", path: ["input"], message: `not a JSON Schema this server understands: ${(e as Error).message}` });
			}
		}
		return { leaseS: entry.lease_s, maxAttempts: entry.max_attempts, timeoutS: entry.timeout_s, input };
	});

/** Type names are what `POST /v1/tasks` accepts as `type` (and safe in logs). */
const TYPE_NAME = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, "type names are 1-64 characters of A-Z a-z 0-9 . _ : -");

const workerTypesVar = objectVar("WORKER_TYPES", z.record(TYPE_NAME, Entry), '{"resize": {"lease_s": 60, "max_attempts": 3}}');

const NONE: ReadonlyMap<string, WorkerType> = new Map();
const maps = new WeakMap<object, ReadonlyMap<string, WorkerType>>();

/** The pull-worker types of this deployment (none when the var is unset). Throws ConfigError when it is bad. */
export function workerTypes(env: Env): ReadonlyMap<string, WorkerType> {
	const value = workerTypesVar(env);
	if (!value) return NONE;
	let map = maps.get(value);
	if (!map) {
		map = new Map(Object.entries(value));
		maps.set(value, map);
	}
	return map;
}

/** The entry for `type`, or undefined when it is not a pull-worker type. */
export function workerType(env: Env, type: string): WorkerType | undefined {
	return workerTypes(env).get(type);
}
