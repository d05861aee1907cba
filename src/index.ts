import { Hono } from "hono";
import type { App } from "./api/app";
import { authorize } from "./api/auth";
import { cors } from "./api/cors";
import { ApiError } from "./api/errors";
import { ConfigError } from "./config";
import { fileRoutes } from "./api/routes/files";
import { docsRoutes } from "./api/routes/docs";
import { dashboardRoutes } from "./api/routes/dashboard";
import { listingRoutes } from "./api/routes/listing";
import { liveRoutes } from "./api/routes/live";
import { serviceRoutes } from "./api/routes/service";
import { taskRoutes } from "./api/routes/tasks";
import { typeRoutes } from "./api/routes/types";
import { workRoutes } from "./api/routes/work";
import { queue } from "./consumer";
import type { TaskMessage } from "./task/model";

export { TaskCoordinator } from "./TaskCoordinator";
export { StatsShard } from "./health/StatsShard";
export { SubscriptionHub } from "./hub/SubscriptionHub";
export { WorkLane } from "./workers/WorkLane";
export { FileLease } from "./files/FileLease";
export { Scheduler } from "./scheduling/Scheduler";

/**
 * The worker's HTTP entry point: authentication, the route modules of src/api/routes, and the
 * one error path. Routes live in their modules; this file only assembles them.
 */
/** The assembled app; exported so tests can read its route table (`app.routes`). */
export const app = new Hono<App>();

/** Browsers on other origins (CORS_ORIGINS): preflights answered before auth, headers on every answer. */
app.use(
	"*",
	cors(() => servedMethods),
);

/** Everything but a minimal /health needs credentials when auth is on (see api/auth.ts). */
app.use("*", async (c, next) => {
	c.set("access", await authorize(c.env, c.req.raw));
	await next();
});

// Every route documents itself (`describe`, api/openapi/describe.ts); the docs module reads
// the whole table, so /openapi.json and /docs cover routes mounted after it too.
for (const module of [
	taskRoutes,
	listingRoutes,
	liveRoutes,
	fileRoutes,
	serviceRoutes,
	workRoutes,
	typeRoutes,
	dashboardRoutes,
	docsRoutes(() => app.routes),
])
	app.route("/", module);

// Known paths with the wrong method: 405 with Allow, not 404. Derived from the routes themselves,
// so a route added to a module gets it without a list to keep in step.
const allowed = new Map<string, Set<string>>();
for (const { path, method } of app.routes) {
	if (method === "ALL") continue;
	allowed.set(path, (allowed.get(path) ?? new Set()).add(method));
}
/** Every method some route answers, for CORS preflights. */
const servedMethods = [...new Set([...allowed.values()].flatMap((methods) => [...methods]))];
for (const [path, methods] of allowed) {
	const allow = [...methods].join(", ");
	app.all(path, () => {
		throw new ApiError(405, "method_not_allowed", `Use ${allow} on this path`, undefined, { Allow: allow });
	});
}

app.notFound(() => {
	throw new ApiError(404, "not_found", "No such route");
});

/** The one error path: ApiErrors become their JSON envelope, a bad var a 500 naming it; anything else is logged and a 500. */
app.onError((err, c) => {
	if (err instanceof ApiError) {
		for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
		return c.json(err.toBody(), err.status);
	}
	if (err instanceof ConfigError) {
		// The deployment's own settings are wrong: say which var and why, on every request that needs it.
		console.error(`${c.req.method} ${new URL(c.req.url).pathname}: ${err.message}`);
		return c.json({ error: { code: "invalid_config", message: err.message, details: { var: err.variable } } }, 500);
	}
	console.error(`${c.req.method} ${new URL(c.req.url).pathname}: ${err.stack ?? String(err)}`);
	return c.json({ error: { code: "internal_error", message: "Internal error" } }, 500);
});

export default { fetch: app.fetch, queue } satisfies ExportedHandler<Env, TaskMessage>;
