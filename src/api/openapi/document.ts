import { z } from "zod";
import { SubmitBody, TASK_ID } from "../schemas";
import { routeDoc, type Access, type ParameterDoc, type RouteDoc } from "./describe";
import { ErrorBody, Health, SeedBody, SeedEnvelope, TaskEvent, TaskView } from "./wire";

/**
 * The OpenAPI 3.1 document of the app, built from its own route table: every route carries a
 * `describe(...)` (describe.ts) with the zod schemas it validates with, turned into JSON Schema
 * 2020-12 (OpenAPI 3.1's dialect) by zod itself. Built once per isolate and cached by the caller.
 */

type JsonSchema = Record<string, unknown>;

/** A route of the app's table (Hono's `app.routes`). */
export interface ServedRoute {
	method: string;
	path: string;
	handler: unknown;
}

/** Schemas shown by name under components.schemas (and referenced from operations). */
const NAMED: [z.ZodType, string][] = [
	[TaskView, "Task"],
	[TaskEvent, "TaskEvent"],
	[ErrorBody, "Error"],
	[Health, "Health"],
	[SubmitBody, "SubmitRequest"],
	[SeedBody, "SeedRequest"],
	[SeedEnvelope, "SeedEnvelope"],
];

/** Errors any route may answer with, besides its own. */
const COMMON_ERRORS: Record<number, string> = {
	500: "Internal error (logged with context); the body says only `internal_error`",
};

const SECURITY: Record<Access, Record<string, string[]>[]> = {
	key: [{ apiKey: [] }],
	"key-or-task-token": [{ apiKey: [] }, { taskToken: [] }],
	public: [{}],
};

/** `/v1/tasks/:id` → `/v1/tasks/{id}`, and the names of its path parameters. */
function openApiPath(path: string): { path: string; params: string[] } {
	const params: string[] = [];
	const converted = path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
		params.push(name);
		return `{${name}}`;
	});
	return { path: converted, params };
}

function operationId(method: string, path: string): string {
	const words = path
		.split(/[^A-Za-z0-9]+/)
		.filter(Boolean)
		.map((w) => w[0]?.toUpperCase() + w.slice(1));
	// `/` has no words: its operation is named for the root.
	return method.toLowerCase() + (words.join("") || "Root");
}

/** Collects JSON Schemas: named ones into components, nested `$defs` hoisted beside them. */
class Schemas {
	readonly components: Record<string, JsonSchema> = {};
	private readonly names = new Map<z.ZodType, string>(NAMED);
	private readonly defNames = new Map<string, string>();

	/** A schema for use in an operation: a `$ref` for named ones, inline otherwise. */
	ref(schema: z.ZodType, io: "input" | "output"): JsonSchema {
		const name = this.names.get(schema);
		if (name === undefined) return this.convert(schema, io, "Inline");
		this.components[name] ??= this.convert(schema, io, name);
		return { $ref: `#/components/schemas/${name}` };
	}

	/**
	 * zod's JSON Schema, ready to sit inside the document: no `$schema`, and its `$defs` (a
	 * recursive JSON value, say) moved to components, since a `#/$defs/…` reference would
	 * resolve against the document root. Identical definitions share one component.
	 */
	private convert(schema: z.ZodType, io: "input" | "output", owner: string): JsonSchema {
		const generated = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as JsonSchema;
		const { $schema: _dialect, $defs, ...body } = generated;
		const renamed = new Map<string, string>();
		for (const [key, def] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) {
			// The content with its own name blanked out, to recognise the same definition again.
			const fingerprint = JSON.stringify(def).replaceAll(`#/$defs/${key}`, "#self");
			let name = this.defNames.get(fingerprint);
			if (name === undefined) {
				name = isJsonValue(def, key) ? "JsonValue" : `${owner}.${key.replace(/[^A-Za-z0-9._-]/g, "")}`;
				this.defNames.set(fingerprint, name);
			}
			renamed.set(key, name);
		}
		const rewrite = (value: unknown): unknown => {
			if (Array.isArray(value)) return value.map(rewrite);
			if (value === null || typeof value !== "object") return value;
			const out: Record<string, unknown> = {};
			for (const [k, v] of Object.entries(value)) {
				const target = k === "$ref" && typeof v === "string" ? renamed.get(v.replace("#/$defs/", "")) : undefined;
				out[k] = target === undefined ? rewrite(v) : `#/components/schemas/${target}`;
			}
			return out;
		};
		for (const [key, def] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) {
			const name = renamed.get(key);
			if (name !== undefined) this.components[name] ??= rewrite(def) as JsonSchema;
		}
		return rewrite(body) as JsonSchema;
	}
}

/** z.json()'s definition: any JSON value (six alternatives, arrays and objects of itself). */
function isJsonValue(def: JsonSchema, key: string): boolean {
	const alternatives = def.anyOf;
	return Array.isArray(alternatives) && alternatives.length === 6 && JSON.stringify(def).includes(`"items":{"$ref":"#/$defs/${key}"}`);
}

function parameter(name: string, location: "path" | "query" | "header", doc: ParameterDoc, schemas: Schemas) {
	return {
		name,
		in: location,
		description: doc.description,
		required: location === "path" ? true : (doc.required ?? false),
		schema: schemas.ref(doc.schema, "input"),
	};
}

function operation(method: string, path: string, params: string[], doc: RouteDoc, schemas: Schemas) {
	const parameters = [
		...params.map((name) =>
			parameter(
				name,
				"path",
				doc.params?.[name] ?? { description: "Task id: 1-128 characters of A-Z a-z 0-9 . _ : -", schema: z.string().regex(TASK_ID) },
				schemas,
			),
		),
		...Object.entries(doc.query ?? {}).map(([name, p]) => parameter(name, "query", p, schemas)),
		...Object.entries(doc.headers ?? {}).map(([name, p]) => parameter(name, "header", p, schemas)),
	];
	const responses: Record<string, unknown> = {};
	const errors: Record<number, string> = { ...COMMON_ERRORS };
	if (doc.access !== "public") errors[401] = "No valid API key (or task token, where one is accepted); `WWW-Authenticate: Bearer`";
	if (params.length > 0) errors[400] ??= "Malformed id";
	for (const [status, answer] of Object.entries(doc.responses)) {
		const body: Record<string, unknown> = { description: answer.description };
		if (answer.schema) body.content = { "application/json": { schema: schemas.ref(answer.schema, "output") } };
		if (answer.content)
			body.content = { [answer.content.mediaType]: { schema: { type: "string", description: answer.content.description } } };
		if (answer.headers) {
			body.headers = Object.fromEntries(
				Object.entries(answer.headers).map(([name, description]) => [name, { description, schema: { type: "string" } }]),
			);
		}
		responses[status] = body;
	}
	for (const [status, description] of Object.entries(errors)) {
		responses[status] ??= { description, content: { "application/json": { schema: schemas.ref(ErrorBody, "output") } } };
	}
	return {
		operationId: operationId(method, path),
		summary: doc.summary,
		...(doc.description ? { description: doc.description } : {}),
		tags: doc.tags,
		...(parameters.length > 0 ? { parameters } : {}),
		...(doc.body || doc.rawBody
			? {
					requestBody: {
						required: true,
						content: {
							...(doc.body ? { "application/json": { schema: schemas.ref(doc.body, "input") } } : {}),
							...(doc.rawBody ? { [doc.rawBody.mediaType]: { schema: { description: doc.rawBody.description } } } : {}),
						},
					},
				}
			: {}),
		responses,
		security: SECURITY[doc.access],
	};
}

/** Routes of the table without a description (`describe`): the test fails on any. */
export function undocumentedRoutes(routes: readonly ServedRoute[]): string[] {
	const described = new Set(routes.filter((r) => routeDoc(r.handler)).map((r) => `${r.method} ${r.path}`));
	const served = new Set(routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`));
	return [...served].filter((route) => !described.has(route));
}

/** The OpenAPI 3.1 document of the routes in `routes` (Hono's `app.routes`). */
export function openApiDocument(routes: readonly ServedRoute[], taskInputs: Record<string, z.ZodType> = {}) {
	const schemas = new Schemas();
	const paths: Record<string, Record<string, unknown>> = {};
	for (const route of routes) {
		const doc = routeDoc(route.handler);
		if (!doc || route.method === "ALL") continue;
		const { path, params } = openApiPath(route.path);
		(paths[path] ??= {})[route.method.toLowerCase()] = operation(route.method, path, params, doc, schemas);
	}
	// The input each task type accepts (what `input` of POST /v1/tasks must be for that type).
	for (const [type, schema] of Object.entries(taskInputs)) {
		schemas.components[`TaskInput.${type}`] = { ...schemas.ref(schema, "input"), description: `\`input\` of a task of type \`${type}\`` };
	}
	return {
		openapi: "3.1.0",
		info: {
			title: "edgetask",
			version: "1",
			description:
				"Long-running tasks behind one HTTPS endpoint. Submit with POST /v1/tasks, then long-poll (Prefer: wait=N), " +
				"follow over a WebSocket or SSE, or receive webhooks. Every error is `{error: {code, message, details?}}`. " +
				"With API keys set, send `Authorization: Bearer <key>`; a task's URLs carry a capability token for that task.",
		},
		tags: [
			{ name: "tasks", description: "Submit, read and cancel tasks" },
			{ name: "live", description: "Follow tasks as they run" },
			{ name: "files", description: "Uploads, files and a task's output as bytes" },
			{ name: "workers", description: "Pull workers: lease tasks of WORKER_TYPES, heartbeat, complete, fail" },
			{ name: "service", description: "Health and the seed template's endpoint" },
			{ name: "docs", description: "This document and its page" },
			{ name: "dashboard", description: "The dashboard at `/`: a page and its files, which hold no data (its calls carry the key)" },
		],
		paths,
		components: {
			schemas: schemas.components,
			securitySchemes: {
				apiKey: { type: "http", scheme: "bearer", description: "An API key from the API_KEYS secret" },
				taskToken: {
					type: "apiKey",
					in: "query",
					name: "token",
					description: "A task's capability token, from the URLs returned with the task",
				},
			},
		},
	};
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>;
