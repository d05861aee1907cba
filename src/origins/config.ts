import { z } from "zod";
import { ConfigError, objectVar } from "../config";
import { MAX_TIMEOUT_S } from "../task/model";

/** How an origin wraps its answers: `seed` is the seed template's `{success, code, msg, data}`. */
export const ENVELOPES = ["seed", "none"] as const;
export type Envelope = (typeof ENVELOPES)[number];

/** Origin names: safe in lane names, logs and error messages. */
export const ORIGIN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Largest `concurrency` an origin may ask for (the limiter of one origin is one object). */
export const MAX_ORIGIN_CONCURRENCY = 1000;
/** Longest `timeout_s` of one request: the longest attempt of any task (840 s, one alarm invocation with headroom). */
export const MAX_ORIGIN_TIMEOUT_S = MAX_TIMEOUT_S;
export const DEFAULT_ORIGIN_TIMEOUT_S = 300;

/** One backend that edgetask fronts, as `ORIGINS` (and `ORIGIN_TOKENS`) configure it. */
export interface Origin {
	name: string;
	/** Base URL without a trailing slash; a task's `path` is appended to it. */
	url: string;
	/** At most this many requests in flight to the origin across the deployment. */
	concurrency: number;
	/** The longest one request may take, a streamed answer included; past it the request is aborted and retried. */
	timeoutS: number;
	envelope: Envelope;
	/** Sent as `Authorization: Bearer <token>` (from the `ORIGIN_TOKENS` secret). */
	token: string | null;
}

function httpBase(url: string): boolean {
	try {
		const u = new URL(url);
		return (u.protocol === "http:" || u.protocol === "https:") && !u.search && !u.hash && !u.username && !u.password;
	} catch {
		return false;
	}
}

const OriginEntry = z.strictObject({
	url: z.string().refine(httpBase, "must be an http:// or https:// URL without credentials, query or fragment"),
	concurrency: z.number().int("must be a whole number").min(1, "must be at least 1").max(MAX_ORIGIN_CONCURRENCY),
	timeout_s: z.number().positive().max(MAX_ORIGIN_TIMEOUT_S).default(DEFAULT_ORIGIN_TIMEOUT_S),
	envelope: z.enum(ENVELOPES).default("none"),
});

const EXAMPLE = '{"gpu":{"url":"http://127.0.0.1:8080","concurrency":1}}';

const originsVar = objectVar("ORIGINS", z.record(z.string(), OriginEntry), EXAMPLE);
const tokensVar = objectVar("ORIGIN_TOKENS", z.record(z.string(), z.unknown()), '{"gpu":"<token>"}');

/** Bearer tokens: printable, no spaces (they go into a header as they are). */
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

/** ORIGIN_TOKENS is a secret: its problems are told without its value (a JSON error would quote it). */
function tokens(env: Env): Record<string, unknown> {
	try {
		return tokensVar(env) ?? {};
	} catch (e) {
		if (!(e instanceof ConfigError)) throw e;
		throw new ConfigError("ORIGIN_TOKENS", 'expected a JSON object like {"gpu":"<token>"} (the value is a secret and is not shown)');
	}
}

/** ORIGINS + ORIGIN_TOKENS, checked as a whole. Token values never appear in an error. */
function parseOrigins(env: Env): ReadonlyMap<string, Origin> {
	const entries = originsVar(env) ?? {};
	const secrets = tokens(env);
	const origins = new Map<string, Origin>();
	for (const [name, entry] of Object.entries(entries)) {
		if (!ORIGIN_NAME.test(name)) {
			throw new ConfigError("ORIGINS", `${JSON.stringify(name.slice(0, 80))}: origin names are 1-64 characters of A-Z a-z 0-9 . _ -`);
		}
		const token = Object.hasOwn(secrets, name) ? secrets[name] : undefined;
		if (token !== undefined && (typeof token !== "string" || !TOKEN.test(token))) {
			throw new ConfigError("ORIGIN_TOKENS", `the token of "${name}" must be a string of printable characters without spaces`);
		}
		origins.set(name, {
			name,
			url: entry.url.replace(/\/+$/, ""),
			concurrency: entry.concurrency,
			timeoutS: entry.timeout_s,
			envelope: entry.envelope,
			token: token ?? null,
		});
	}
	const stray = Object.keys(secrets).filter((name) => !origins.has(name));
	if (stray.length > 0) {
		const names = stray.map((n) => JSON.stringify(n.slice(0, 80))).join(", ");
		throw new ConfigError("ORIGIN_TOKENS", `has tokens for ${names}, which ORIGINS does not configure`);
	}
	return origins;
}

/** Parsed once per env (an env is fixed for an isolate's life); a bad config is remembered too. */
const parsed = new WeakMap<Env, ReadonlyMap<string, Origin> | ConfigError>();

/** Every configured origin by name. Throws `ConfigError` when ORIGINS or ORIGIN_TOKENS is bad. */
export function origins(env: Env): ReadonlyMap<string, Origin> {
	let result = parsed.get(env);
	if (!result) {
		try {
			result = parseOrigins(env);
		} catch (e) {
			if (!(e instanceof ConfigError)) throw e;
			result = e;
		}
		parsed.set(env, result);
	}
	if (result instanceof ConfigError) throw result;
	return result;
}

/** The origin called `name`, or undefined. Throws `ConfigError` when the configuration is bad. */
export function findOrigin(env: Env, name: string): Origin | undefined {
	return origins(env).get(name);
}

/**
 * The lane an origin's requests wait in: `origin:<name>`, with the origin's concurrency as its
 * number of slots. The scheduler (src/scheduling) decides the lane of every task; this says what
 * an origin's lane is.
 */
export function originLane(origin: Origin): { lane: string; concurrency: number } {
	return { lane: `origin:${origin.name}`, concurrency: origin.concurrency };
}
