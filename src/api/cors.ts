import type { MiddlewareHandler } from "hono";
import { normaliseOrigin, settings } from "../config";
import type { App } from "./app";
import { ApiError } from "./errors";

/**
 * Cross-origin access for browsers (`CORS_ORIGINS`: comma-separated origins, or `*`; unset = none).
 *
 * - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, before
 *   authentication (browsers never send credentials on it): 204 with the methods the app
 *   serves, the headers below and a max age for an allowed origin, 403 for any other.
 * - Every other answer to an allowed origin, errors included, carries
 *   `Access-Control-Allow-Origin` and exposes `Location`, `Retry-After`, `Preference-Applied`.
 * - WebSockets are not covered by CORS, so the server checks their `Origin` itself: an upgrade
 *   from a page on a foreign origin that is not allowed is refused (403). Same-origin pages and
 *   clients that send no Origin (servers, CLIs) are not affected.
 *
 * Credentials are bearer keys or task tokens, never cookies, so `*` is safe to answer.
 */

/** Request headers a page may send. Add a header here when a route starts reading one. */
export const CORS_ALLOWED_HEADERS = ["authorization", "content-type", "prefer", "last-event-id"];
/** Response headers a page may read. */
export const CORS_EXPOSED_HEADERS = ["location", "retry-after", "preference-applied"];
/** How long a browser may cache a preflight (Chrome caps this at 2 hours). */
export const CORS_MAX_AGE_S = 7200;

/** The Access-Control-Allow-Origin value for `origin`, or null when it may not read answers. */
function allowOrigin(allowed: "*" | string[], origin: string): string | null {
	if (allowed === "*") return "*";
	return allowed.includes(normaliseOrigin(origin)) ? origin : null;
}

/**
 * The CORS middleware; `methods` lists the methods the app serves (read at request time, so
 * routes added later are included).
 */
export function cors(methods: () => string[]): MiddlewareHandler<App> {
	return async (c, next) => {
		const origin = c.req.header("origin");
		const allowed = settings(c.env).corsOrigins;
		const allow = origin === undefined ? null : allowOrigin(allowed, origin);
		const varies = allowed !== "*";

		if (c.req.method === "OPTIONS" && origin !== undefined && c.req.header("access-control-request-method") !== undefined) {
			if (allow === null) throw originRefused(origin);
			const headers = new Headers({
				"access-control-allow-origin": allow,
				"access-control-allow-methods": [...methods(), "OPTIONS"].join(", "),
				"access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
				"access-control-max-age": String(CORS_MAX_AGE_S),
			});
			if (varies) headers.set("vary", "Origin");
			return new Response(null, { status: 204, headers });
		}

		if (origin !== undefined && allow === null && c.req.header("upgrade")?.toLowerCase() === "websocket") {
			if (normaliseOrigin(origin) !== new URL(c.req.url).origin) throw originRefused(origin);
		}

		await next();

		// A 101 carries the socket itself; its headers are the runtime's, and CORS does not apply.
		if (c.res.status === 101 || (allow === null && !varies)) return;
		const res = new Response(c.res.body, c.res);
		if (allow !== null) {
			res.headers.set("access-control-allow-origin", allow);
			res.headers.set("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
		}
		// The answer depends on the Origin: caches must not hand one origin's answer to another.
		if (varies) res.headers.append("vary", "Origin");
		c.res = res;
	};
}

function originRefused(origin: string): ApiError {
	return new ApiError(403, "origin_not_allowed", `Origin ${origin} is not allowed: add it to CORS_ORIGINS`);
}
