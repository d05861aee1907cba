import type { z } from "zod";
import { offeredProcessors } from "../../processors";
import { routes } from "../app";
import { describe } from "../openapi/describe";
import { openApiDocument, type OpenApiDocument, type ServedRoute } from "../openapi/document";
import { docsPage } from "../openapi/page";

/**
 * `GET /openapi.json` and `GET /docs`: the API describing itself. `served` reads the app's route
 * table (src/index.ts), so routes mounted after this module are included. Both are built once
 * per isolate: the routes are fixed, and so are the task types an env offers.
 */
export function docsRoutes(served: () => readonly ServedRoute[]) {
	const module = routes();
	const built = new WeakMap<Env, { doc: OpenApiDocument; page: string }>();
	const documentFor = (env: Env) => {
		let entry = built.get(env);
		if (!entry) {
			const inputs: Record<string, z.ZodType> = {};
			for (const [type, processor] of Object.entries(offeredProcessors(env))) inputs[type] = processor.input;
			const doc = openApiDocument(served(), inputs);
			entry = { doc, page: docsPage(doc) };
			built.set(env, entry);
		}
		return entry;
	};

	module.get(
		"/openapi.json",
		describe({
			summary: "This API's OpenAPI 3.1 document",
			tags: ["docs"],
			access: "public",
			responses: {
				200: {
					description: "The document (every route, request body, answer and error)",
					content: { mediaType: "application/json", description: "OpenAPI 3.1 document" },
				},
			},
		}),
		(c) => c.json(documentFor(c.env).doc),
	);

	module.get(
		"/docs",
		describe({
			summary: "The API's documentation as one self-contained page (works offline)",
			tags: ["docs"],
			access: "public",
			responses: { 200: { description: "HTML", content: { mediaType: "text/html", description: "The documentation page" } } },
		}),
		(c) => c.html(documentFor(c.env).page),
	);
	return module;
}
