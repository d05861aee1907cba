import type { Context } from "hono";
import { z } from "zod";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody } from "../openapi/wire";

/**
 * The dashboard at `/`: static files (built from dashboard/ into public/ by
 * scripts/buildDashboard.mjs) served through the `ASSETS` binding. They go through the Worker
 * (`run_worker_first`), so unknown paths keep the API's JSON 404 and every page gets the same
 * strict headers: the page may talk to this origin only, and run only its own script.
 */
export const dashboardRoutes = routes();

const SECURITY_HEADERS: Record<string, string> = {
	"Content-Security-Policy":
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy": "no-referrer",
	// Revalidated every time (the assets answer with an ETag), so a deploy is seen at once.
	"Cache-Control": "no-cache",
};

async function serveAsset(c: Context<App>, path: string): Promise<Response> {
	const asset = await c.env.ASSETS.fetch(new Request(new URL(path, c.req.url), { headers: c.req.raw.headers }));
	if (asset.status === 404) throw new ApiError(404, "not_found", "No such route");
	const response = new Response(asset.body, asset);
	for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
	return response;
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
	(c) => serveAsset(c, "/"),
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
	(c) => serveAsset(c, `/dashboard/${encodeURIComponent(c.req.param("file"))}`),
);
