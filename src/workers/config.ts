import { z } from "zod";
import { ApiError } from "../api/errors";

/**
 * `WORKER_TYPES`: task types that never run inside the Worker. Their tasks wait (status
 * `queued`, with `queue_position`) until an external worker leases them over `/v1/work`.
 *
 * ```toml
 * [vars.WORKER_TYPES]
 * resize = { lease_s = 60, max_attempts = 3, timeout_s = 900 }
 * ```
 * or, as `wrangler dev --var` gives it, the same as a JSON string. An entry may carry `input`,
 * a JSON Schema that submissions are validated against.
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

const Entry = z.strictObject({
	lease_s: z.number().min(1).max(3600).default(60),
	max_attempts: z.number().int().min(1).max(100).default(3),
	timeout_s: z.number().positive().max(900).default(900),
	input: z.union([z.record(z.string(), z.json()), z.boolean()]).optional(),
});

const TYPE_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

/** Parsed per env object (an env is fixed for an isolate's life); a bad value is remembered too. */
const parsed = new WeakMap<Env, Map<string, WorkerType> | ApiError>();

/** The pull-worker types of this deployment. Throws a 500 `invalid_config` that names the problem. */
export function workerTypes(env: Env): Map<string, WorkerType> {
	let types = parsed.get(env);
	if (!types) {
		types = parseWorkerTypes((env as { WORKER_TYPES?: unknown }).WORKER_TYPES);
		parsed.set(env, types);
	}
	if (types instanceof ApiError) throw types;
	return types;
}

/** The entry for `type`, or undefined when it is not a pull-worker type. */
export function workerType(env: Env, type: string): WorkerType | undefined {
	return workerTypes(env).get(type);
}

/** A bad WORKER_TYPES has no safe default: every request that needs it is answered with what is wrong. */
function configError(message: string): ApiError {
	return new ApiError(500, "invalid_config", `WORKER_TYPES: ${message}`, { var: "WORKER_TYPES" });
}

/** Parses the var: a table from wrangler.toml, or the same as a JSON string; absent or empty: none. */
export function parseWorkerTypes(raw: unknown): Map<string, WorkerType> | ApiError {
	let value = raw;
	if (typeof raw === "string") {
		if (raw.trim() === "") return new Map();
		try {
			value = JSON.parse(raw);
		} catch (e) {
			return configError(`not valid JSON (${(e as Error).message})`);
		}
	}
	if (value === undefined || value === null) return new Map();
	if (typeof value !== "object" || Array.isArray(value)) return configError('expected an object { "<type>": { "lease_s": 60, … } }');
	const types = new Map<string, WorkerType>();
	for (const [name, entry] of Object.entries(value)) {
		if (!TYPE_NAME.test(name)) return configError(`type name ${JSON.stringify(name)} must be 1-64 characters of A-Z a-z 0-9 . _ : -`);
		const result = Entry.safeParse(entry);
		if (!result.success) {
			const issue = result.error.issues[0];
			const where = issue?.path.length ? `.${issue.path.join(".")}` : "";
			return configError(`${name}${where}: ${issue?.message ?? "invalid"}`);
		}
		let input: z.ZodType | null = null;
		if (result.data.input !== undefined) {
			try {
				input = z.fromJSONSchema(result.data.input);
			} catch (e) {
				return configError(`${name}.input is not a JSON Schema this server understands: ${(e as Error).message}`);
			}
		}
		types.set(name, {
			leaseS: result.data.lease_s,
			maxAttempts: result.data.max_attempts,
			timeoutS: result.data.timeout_s,
			input,
		});
	}
	return types;
}
