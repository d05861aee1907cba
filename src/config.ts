import { z } from "zod";

/** Numeric settings read from `[vars]`, with the defaults that apply when a var is missing or bad. */
export interface Settings {
	defaultTtlS: number;
	queuedRecoveryS: number;
	maxBodyBytes: number;
	healthShards: number;
	processTaskType: string;
	/** When set, `POST /process` forwards to this origin's `/process` (README "Put edgetask in front of your model server"). */
	processOrigin: string | null;
	faultProcessors: boolean;
	webhookRetryBaseS: number;
	maxWaitingRequests: number;
	/** One JSON log line per task end (src/observability/taskEndLog.ts). */
	taskEndLogs: boolean;
	/** Head start of a `high` task over a `normal` one (and of `normal` over `low`) for a slot, in seconds. */
	priorityOffsetS: number;
	/** Largest upload, multipart submit, or image fetched from a URL. */
	maxUploadBytes: number;
	/** An upload that no task uses is deleted this long after it was made. */
	uploadTtlS: number;
	/** Largest JSON output a task may store (in R2 past 64 KiB); larger fails `output_too_large`. */
	maxOutputBytes: number;
	/** Origins whose pages may call the API (`CORS_ORIGINS`): "*", or a list (empty: none). */
	corsOrigins: "*" | string[];
	/**
	 * How a submitted task reaches its start: `queue` (a queue message, handed to the task's object
	 * by the consumer) or `direct` (the object starts it itself). Anything but "direct" is `queue`.
	 */
	dispatch: "queue" | "direct";
}

function positive(raw: string | undefined, fallback: number): number {
	const n = Number(raw);
	return Number.isFinite(n) && n > 0 ? n : fallback;
}

function nonNegative(raw: string | undefined, fallback: number): number {
	const n = raw === undefined || raw === "" ? NaN : Number(raw);
	return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** Settings per env object: parsed once per isolate, not on every call (an env is fixed for an isolate's life). */
const parsed = new WeakMap<Env, Settings>();

/** The settings of the worker's env (vars arrive as strings). */
export function settings(env: Env): Settings {
	let s = parsed.get(env);
	if (!s) {
		s = parse(env);
		parsed.set(env, s);
	}
	return s;
}

function parse(env: Env): Settings {
	return {
		defaultTtlS: positive(env.DEFAULT_TTL_S, 3600),
		queuedRecoveryS: positive(env.QUEUED_RECOVERY_S, 30),
		maxBodyBytes: positive(env.MAX_BODY_BYTES, 131072),
		healthShards: Math.floor(positive(env.HEALTH_SHARDS, 16)),
		processTaskType: env.PROCESS_TASK_TYPE || "sleep",
		processOrigin: env.PROCESS_ORIGIN || null,
		faultProcessors: env.ENABLE_FAULT_PROCESSORS === "true",
		webhookRetryBaseS: positive(env.WEBHOOK_RETRY_BASE_S, 2),
		maxWaitingRequests: positive(env.MAX_WAITING_REQUESTS, 5000),
		taskEndLogs: env.TASK_END_LOGS !== "false",
		priorityOffsetS: nonNegative(env.PRIORITY_OFFSET_S, 300),
		maxUploadBytes: positive(env.MAX_UPLOAD_BYTES, 25 * 1024 * 1024),
		uploadTtlS: positive(env.UPLOAD_TTL_S, 3600),
		maxOutputBytes: positive(env.MAX_OUTPUT_BYTES, 1024 * 1024),
		corsOrigins: originList(env.CORS_ORIGINS),
		dispatch: env.DISPATCH === "direct" ? "direct" : "queue",
	};
}

/** A comma-separated list of origins, or `*`. Entries are normalised as browsers send them. */
function originList(raw: string | undefined): "*" | string[] {
	const entries = (raw ?? "")
		.split(",")
		.map((e) => e.trim())
		.filter(Boolean);
	if (entries.includes("*")) return "*";
	return entries.map(normaliseOrigin);
}

/** `scheme://host[:port]` in lower case, no path or trailing slash: how an `Origin` header spells it. */
export function normaliseOrigin(origin: string): string {
	try {
		return new URL(origin).origin;
	} catch {
		return origin.toLowerCase();
	}
}

// ---- object-valued vars (CONCURRENCY, ORIGINS, WORKER_TYPES) ----

/**
 * A var that is set but cannot be used. Unlike a bad number, which falls back to its default,
 * a wrong object var (a concurrency limit, an origin) has no safe default: guessing would
 * overload a backend or send tasks nowhere. It is thrown at first use, every time, and the API
 * answers it as a 500 `invalid_config` naming the var and what is wrong.
 */
export class ConfigError extends Error {
	constructor(
		readonly variable: string,
		problem: string,
	) {
		super(`${variable}: ${problem}`);
		this.name = "ConfigError";
	}
}

type Parsed<T> = { ok: true; value: T | undefined } | { ok: false; error: ConfigError };

/**
 * A reader for an object-valued var. The value may be a table in wrangler.toml (it arrives as
 * an object) or a JSON string (`wrangler dev --var 'NAME:{"a":1}'`, the dashboard, a secret);
 * both are parsed the same way and checked against `schema`. Unset or empty: `undefined`.
 * Parsed once per env; a bad value throws ConfigError on every call.
 *
 * @example
 * const origins = objectVar("ORIGINS", z.record(z.string(), Origin), '{"gpu":{"url":"http://10.0.0.5:8000","concurrency":1}}');
 * origins(env)?.gpu?.url;
 */
export function objectVar<S extends z.ZodType>(name: string, schema: S, example: string): (env: Env) => z.output<S> | undefined {
	const cache = new WeakMap<Env, Parsed<z.output<S>>>();
	return (env) => {
		let entry = cache.get(env);
		if (!entry) {
			entry = parseObjectVar(name, (env as unknown as Record<string, unknown>)[name], schema, example);
			cache.set(env, entry);
		}
		if (!entry.ok) throw entry.error;
		return entry.value;
	};
}

function parseObjectVar<S extends z.ZodType>(name: string, raw: unknown, schema: S, example: string): Parsed<z.output<S>> {
	if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) return { ok: true, value: undefined };
	let value: unknown = raw;
	if (typeof raw === "string") {
		try {
			value = JSON.parse(raw);
		} catch (e) {
			return {
				ok: false,
				error: new ConfigError(name, `not valid JSON (${(e as Error).message}); expected an object like ${example}`),
			};
		}
	}
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		return { ok: false, error: new ConfigError(name, `expected a JSON object like ${example}, got ${JSON.stringify(value)}`) };
	}
	const result = schema.safeParse(value);
	if (!result.success) {
		const problems = result.error.issues.map((i) => `${i.path.map(String).join(".") || "(value)"}: ${i.message}`);
		return { ok: false, error: new ConfigError(name, `${problems.join("; ")} (expected an object like ${example})`) };
	}
	return { ok: true, value: result.data };
}

/** Type names are what `POST /v1/tasks` accepts as `type`. */
const TYPE_NAME = z.string().min(1).max(64);

/**
 * `CONCURRENCY`: `{ "<type>": N }`, at most N attempts of that type run at once across the
 * deployment. A type missing here runs unlimited unless its processor sets `concurrency`.
 */
export const concurrencyVar = objectVar(
	"CONCURRENCY",
	z.record(TYPE_NAME, z.number().int("must be a whole number").positive("must be at least 1").max(1_000_000)),
	'{"sleep": 2}',
);
