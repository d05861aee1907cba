import type { MiddlewareHandler } from "hono";
import type { z } from "zod";

/**
 * How a route documents itself: `describe({...})` goes in the route's handler list, before the
 * handler, with the same zod schemas the handler validates with. The OpenAPI document
 * (document.ts) is built from the app's own routes, so a route is documented where it is
 * declared, and test/worker/openapi.test.ts fails for any route served without a description.
 *
 * @example
 * taskRoutes.post("/v1/tasks", describe({ summary: "Submit a task", tags: ["tasks"], body: SubmitBody,
 *   responses: { 202: { description: "Accepted", schema: TaskView } } }), async (c) => { … });
 */

/** Who may call a route: an API key; a key or the task's capability token; anyone. */
export type Access = "key" | "key-or-task-token" | "public";

export interface ResponseDoc {
	description: string;
	/** JSON body; omitted for empty answers (204) and WebSocket upgrades (101). */
	schema?: z.ZodType;
	/** A body of another media type (e.g. text/event-stream), described in words. */
	content?: { mediaType: string; description: string };
	/** Response headers: name → description. */
	headers?: Record<string, string>;
}

export interface ParameterDoc {
	description: string;
	schema: z.ZodType;
	required?: boolean;
}

export interface RouteDoc {
	summary: string;
	description?: string;
	/** Groups in the docs page: tasks, live, service, docs … */
	tags: string[];
	access: Access;
	/** The JSON request body, validated by the handler with this schema. */
	body?: z.ZodType;
	/** A request body of another media type (an upload, a multipart submit), described in words. */
	rawBody?: { mediaType: string; description: string };
	/** Path parameters; a `:id` not listed here is a task id. */
	params?: Record<string, ParameterDoc>;
	query?: Record<string, ParameterDoc>;
	headers?: Record<string, ParameterDoc>;
	/** Answers this route gives besides the errors every route may give (400 bad id, 401, 500). */
	responses: Record<number, ResponseDoc>;
}

const docs = new WeakMap<object, RouteDoc>();

/** Documents the route it is placed in; passes every request straight on. */
export function describe(doc: RouteDoc): MiddlewareHandler {
	const middleware: MiddlewareHandler = async (_c, next) => {
		await next();
	};
	docs.set(middleware, doc);
	return middleware;
}

/** The description a handler of the app's route table carries, if it is a `describe` middleware. */
export function routeDoc(handler: unknown): RouteDoc | undefined {
	return typeof handler === "function" ? docs.get(handler) : undefined;
}
