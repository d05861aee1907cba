import { Hono } from "hono";
import type { Access } from "./auth";

/** The Hono environment every route module shares: the worker's bindings and how the request was let in. */
export type App = { Bindings: Env; Variables: { access: Access } };

/** A route module: a Hono app mounted at the root by src/index.ts. */
export function routes(): Hono<App> {
	return new Hono<App>();
}
