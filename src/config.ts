/** Numeric settings read from `[vars]`, with the defaults that apply when a var is missing or bad. */
export interface Settings {
	defaultTtlS: number;
	queuedRecoveryS: number;
	maxBodyBytes: number;
	healthShards: number;
	processTaskType: string;
	faultProcessors: boolean;
	webhookRetryBaseS: number;
	maxWaitingRequests: number;
	submitRatePerS: number;
	submitBurst: number;
}

function positive(raw: string | undefined, fallback: number): number {
	const n = Number(raw);
	return Number.isFinite(n) && n > 0 ? n : fallback;
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
		faultProcessors: env.ENABLE_FAULT_PROCESSORS === "true",
		webhookRetryBaseS: positive(env.WEBHOOK_RETRY_BASE_S, 2),
		maxWaitingRequests: positive(env.MAX_WAITING_REQUESTS, 5000),
		submitRatePerS: positive(env.SUBMIT_RATE_PER_S, 500),
		submitBurst: positive(env.SUBMIT_BURST, 1000),
	};
}
