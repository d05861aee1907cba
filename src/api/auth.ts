import { toBase64Url, fromBase64 } from "../lib/base64";
import { ApiError } from "./errors";

/**
 * Who may do what.
 * - `API_KEYS` (secret, comma-separated): when set, every route but a minimal `GET /health`
 *   needs `Authorization: Bearer <key>`; keys are compared in constant time.
 * - No keys: closed (401) unless `AUTH_MODE = "open"`, which `npm run dev` sets for local work.
 *   The deployed configuration (wrangler.toml) says "required", so it is closed by default.
 * - Per-task capability tokens: submit returns URLs carrying `?token=`, an HMAC over the task id
 *   and an expiry. A token opens that one task's get/ws/events/cancel and nothing else, so a
 *   browser can follow a task without holding an API key. Task ids alone grant nothing.
 */

const encoder = new TextEncoder();

export function apiKeys(env: Env): string[] {
	return (env.API_KEYS ?? "")
		.split(",")
		.map((k) => k.trim())
		.filter(Boolean);
}

/** True when requests need credentials (keys configured, or no keys and not explicitly open). */
export function authRequired(env: Env): boolean {
	return apiKeys(env).length > 0 || env.AUTH_MODE !== "open";
}

async function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** Digests of the configured keys, computed once per isolate (per API_KEYS value). */
let keyDigests: { source: string; digests: Promise<ArrayBuffer[]> } | null = null;

/**
 * The SHA-256 of a request's bearer key, computed once per request: authorization and the
 * submission limiter's client key (admission.ts) both need it. Incoming headers cannot change.
 */
const presentedDigests = new WeakMap<Request, Promise<ArrayBuffer>>();

export function bearerDigest(request: Request, key: string): Promise<ArrayBuffer> {
	let digest = presentedDigests.get(request);
	if (!digest) {
		digest = sha256(key);
		presentedDigests.set(request, digest);
	}
	return digest;
}

/** Constant-time membership of a presented key, by its digest: hashes make the lengths equal, timingSafeEqual compares. */
export async function isValidKey(env: Env, presentedDigest: Promise<ArrayBuffer>): Promise<boolean> {
	const source = env.API_KEYS ?? "";
	if (keyDigests?.source !== source) keyDigests = { source, digests: Promise.all(apiKeys(env).map(sha256)) };
	const digest = await presentedDigest;
	let found = false;
	for (const known of await keyDigests.digests) {
		if (crypto.subtle.timingSafeEqual(digest, known)) found = true;
	}
	return found;
}

/** The bearer credential of a request, if any. */
export function bearer(request: Request): string | null {
	const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
	return match?.[1] ?? null;
}

let cachedTokenKey: { secret: string; key: Promise<CryptoKey> } | null = null;

function tokenKey(env: Env): Promise<CryptoKey> {
	// A dedicated TOKEN_SECRET lets API keys rotate without invalidating task URLs.
	const secret = env.TOKEN_SECRET || `edgetask-task-token:${apiKeys(env).join(",")}`;
	if (cachedTokenKey?.secret !== secret) {
		const key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
		cachedTokenKey = { secret, key };
	}
	return cachedTokenKey.key;
}

/** A capability token for task `id`, valid for `ttlS` seconds: `<expiry>.<signature>`. */
export async function taskToken(env: Env, id: string, ttlS: number): Promise<string> {
	const exp = Math.floor(Date.now() / 1000) + Math.ceil(ttlS);
	const mac = await crypto.subtle.sign("HMAC", await tokenKey(env), encoder.encode(`${id}.${exp}`));
	return `${exp}.${toBase64Url(mac)}`;
}

/** True when `token` was issued for task `id` and has not expired. Never without a real secret. */
export async function verifyTaskToken(env: Env, id: string, token: string): Promise<boolean> {
	// With neither TOKEN_SECRET nor API keys the token key would be a public constant.
	if (!env.TOKEN_SECRET && apiKeys(env).length === 0) return false;
	const match = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
	if (!match?.[1] || !match[2]) return false;
	if (Number(match[1]) < Date.now() / 1000) return false;
	const mac = fromBase64(match[2]);
	if (!mac) return false;
	return crypto.subtle.verify("HMAC", await tokenKey(env), mac, encoder.encode(`${id}.${match[1]}`));
}

/** The dashboard's page and its static files (src/api/routes/dashboard.ts). */
export function isDashboardPath(pathname: string): boolean {
	return pathname === "/" || pathname.startsWith("/dashboard/");
}

/** Paths a task token opens: `/v1/tasks/{id}` and its ws, events, cancel and output. */
const TASK_PATH = /^\/v1\/tasks\/([A-Za-z0-9._:-]{1,128})(\/ws|\/events|\/cancel|\/output)?$/;

/**
 * How a request was let in: `open` (auth off), `key` (a valid API key), `task-token` (a valid
 * token for the task in the path), `anonymous` (no credentials, on the routes that allow it:
 * `GET /health`, which then answers only `{status}`, `GET /v1/ws`, whose subscriptions then
 * each need a task token, and the API's description, `GET /openapi.json` and `GET /docs`, and the dashboard's static files, `GET /` and
 * `GET /dashboard/*`, which hold no data).
 */
export type Access = "open" | "key" | "task-token" | "anonymous";

/** Decides whether a request may proceed; throws 401 otherwise. */
export async function authorize(env: Env, request: Request): Promise<Access> {
	if (!authRequired(env)) return "open";
	const key = bearer(request);
	if (key && (await isValidKey(env, bearerDigest(request, key)))) return "key";
	const url = new URL(request.url);
	const token = url.searchParams.get("token");
	const task = TASK_PATH.exec(url.pathname);
	if (token && task?.[1] && apiKeys(env).length > 0 && (await verifyTaskToken(env, task[1], token))) return "task-token";
	if (request.method === "GET" && url.pathname === "/health") return "anonymous";
	// The API's own description is public, as API docs are.
	if (request.method === "GET" && (url.pathname === "/openapi.json" || url.pathname === "/docs")) return "anonymous";
	// The dashboard's static files hold no data: it asks for the key and sends it with each call.
	if (request.method === "GET" && isDashboardPath(url.pathname)) return "anonymous";
	// Anonymous multi-task sockets live on task tokens, which need a configured secret.
	if (request.method === "GET" && url.pathname === "/v1/ws" && apiKeys(env).length > 0) return "anonymous";
	if (apiKeys(env).length === 0) {
		throw new ApiError(
			401,
			"auth_not_configured",
			"No API keys are configured: set API_KEYS (wrangler secret put API_KEYS), or AUTH_MODE=open for local use",
			undefined,
			{
				"WWW-Authenticate": 'Bearer realm="edgetask"',
			},
		);
	}
	throw new ApiError(401, "unauthorized", "Send Authorization: Bearer <API key>, or a task URL's token", undefined, {
		"WWW-Authenticate": 'Bearer realm="edgetask"',
	});
}
