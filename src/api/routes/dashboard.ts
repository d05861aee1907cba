import type { Context } from "hono";
import { z } from "zod";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody } from "../openapi/wire";
import files from "./dashboardFiles.js";

/**
 * The dashboard at `/`: static files built from dashboard/ by scripts/buildDashboard.mjs into a
 * module of this bundle (dashboardFiles.js) and served from it here. No static-assets binding:
 * with one, the asset router stands in front of every request, the API's too (~0.5 ms of runtime
 * CPU per task locally, README Performance). Unknown paths keep the API's JSON 404 and every page
 * gets the same strict headers: the page may talk to this origin only, and run only its own script.
 */
export const dashboardRoutes = routes();

const SECURITY_HEADERS: Record<string, string> = {
	"Content-Security-Policy":
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy": "no-referrer",
	// Revalidated every time (each file has an ETag of its content), so a deploy is seen at once.
	"Cache-Control": "no-cache",
};

/** If-None-Match names this ETag (weak comparison, as RFC 9110 says for it; `*` matches any). */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
	if (!ifNoneMatch) return false;
	return ifNoneMatch.split(",").some((tag) => {
		const t = tag.trim();
		return t === "*" || (t.startsWith("W/") ? t.slice(2) : t) === etag;
	});
}

function serveFile(c: Context<App>, path: string): Response {
	const file = files[path];
	if (!file) throw new ApiError(404, "not_found", "No such route");
	const headers = new Headers({ ...SECURITY_HEADERS, "Content-Type": file.type, ETag: file.etag });
	if (notModified(c.req.header("if-none-match"), file.etag)) return new Response(null, { status: 304, headers });
	return new Response(file.body, { headers });
}

dashboardRoutes.get(
	"/",
	describe({
		summary: "The dashboard",
		description: "Live counts, recent tasks with progress, a task's detail and events, a submit form. Holds no data: it asks for the key.",
		tags: ["dashboard"],
		access: "public",
		responses: { 200: { description: "The page", content: { mediaType: "text/html", description: "The dashboard's page" } } },
	}),
	(c) => serveFile(c, "/"),
);

dashboardRoutes.get(
	"/dashboard/:file",
	describe({
		summary: "The dashboard's script and stylesheet",
		tags: ["dashboard"],
		access: "public",
		params: { file: { description: "`app.js`, `app.js.map` or `style.css`", schema: z.string() } },
		responses: {
			200: { description: "The file", content: { mediaType: "*/*", description: "JavaScript, its source map or CSS" } },
			404: { description: "No such file", schema: ErrorBody },
		},
	}),
	(c) => serveFile(c, `/dashboard/${c.req.param("file")}`),
);
