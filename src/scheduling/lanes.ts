import { ConfigError, concurrencyVar } from "../config";
import { httpTaskLane } from "../origins";
import { findProcessor } from "../processors";
import { workerType } from "../workers/config";

/** A lane: the slots that tasks of one limited type (or one origin) share across the deployment. */
export interface Lane {
	/** The lane object's name: `type:<T>`, or `origin:<name>` for an http origin. */
	lane: string;
	/** At most this many of its tasks run at once. */
	concurrency: number;
}

/** CONCURRENCY checked against the types this deployment runs, once per env. */
const checkedLimits = new WeakMap<Env, Record<string, number>>();

/** CONCURRENCY, with every type it names being one this deployment runs (a typo would limit nothing). */
function typeLimits(env: Env): Record<string, number> {
	let limits = checkedLimits.get(env);
	if (limits) return limits;
	limits = concurrencyVar(env) ?? {};
	for (const type of Object.keys(limits)) {
		if (type === "http") {
			throw new ConfigError("CONCURRENCY", `"http" is limited per origin: set each origin's concurrency in ORIGINS`);
		}
		if (workerType(env, type)) {
			throw new ConfigError("CONCURRENCY", `"${type}" is a WORKER_TYPES type: its concurrency is how many workers lease it`);
		}
		if (!findProcessor(type, env)) throw new ConfigError("CONCURRENCY", `"${type}" is not a task type this deployment runs`);
	}
	checkedLimits.set(env, limits);
	return limits;
}

/**
 * The one place that decides which lane a task waits in, or null when it never waits (its type
 * has no limit: it starts the moment its message arrives and never touches a lane object).
 * An `http` task waits in its origin's lane (`origin:<name>`, the origin's `concurrency`,
 * whatever CONCURRENCY says); for other types `CONCURRENCY` wins over a processor's own
 * `concurrency`. Pull-worker types wait in the work lane instead. Throws ConfigError when
 * CONCURRENCY or ORIGINS is bad: the API calls this at submit, so a bad config is a clear error
 * at first use.
 */
export function laneOf(env: Env, type: string, input: unknown): Lane | null {
	const limits = typeLimits(env);
	if (workerType(env, type)) return null; // pull tasks wait in the work lane (workers/WorkLane.ts)
	if (type === "http") return httpTaskLane(env, input);
	const limit = limits[type] ?? findProcessor(type, env)?.concurrency;
	return limit === undefined ? null : { lane: `type:${type}`, concurrency: limit };
}
