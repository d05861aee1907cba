/**
 * The calls the dashboard makes besides the client's: the task listing and the task types.
 * Errors are the client's `HttpError`, so the page handles every answer alike.
 */
import { HttpError } from "../clients/js/src/errors";
import type { ErrorBody, Task } from "../clients/js/src/types";

/** A row of `GET /v1/tasks`. */
export type TaskRow = Pick<
	Task,
	| "id"
	| "type"
	| "status"
	| "priority"
	| "progress"
	| "attempts"
	| "created_at"
	| "started_at"
	| "finished_at"
	| "metrics"
	| "error"
	| "urls"
>;

type JsonSchema = {
	type?: string | string[];
	properties?: Record<string, JsonSchema>;
	required?: string[];
	default?: unknown;
	enum?: unknown[];
	const?: unknown;
	anyOf?: JsonSchema[];
	oneOf?: JsonSchema[];
	minimum?: number;
};

/** A task type as `GET /v1/types` describes it, with what the form needs. */
export interface TaskTypeInfo {
	type: string;
	/** `worker`: runs in the Worker; `pull`: waits for a pull worker (WORKER_TYPES). */
	runs: "worker" | "pull";
	input_schema: JsonSchema | null;
	/** An input to start from: the schema's defaults and first choices. */
	example: unknown;
	/** The input field that takes a `{"$file": …}` reference, if any. */
	file_field: string | null;
}

async function call<T>(apiKey: string | undefined, path: string, init: RequestInit = {}): Promise<T> {
	const headers = new Headers(init.headers);
	if (apiKey) headers.set("authorization", `Bearer ${apiKey}`);
	const res = await fetch(path, { ...init, headers });
	const text = await res.text();
	let body: unknown = null;
	try {
		body = JSON.parse(text);
	} catch {
		body = { error: { code: "not_json", message: text.slice(0, 200) } };
	}
	if (!res.ok) throw new HttpError(res.status, body as ErrorBody, res.headers);
	return body as T;
}

/** One page of `GET /v1/tasks`. */
export function listTasks(
	apiKey: string | undefined,
	q: { status?: string; type?: string; limit: number; cursor?: string },
): Promise<{ tasks: TaskRow[]; next_cursor: string | null }> {
	const params = new URLSearchParams({ limit: String(q.limit) });
	if (q.status) params.set("status", q.status);
	if (q.type) params.set("type", q.type);
	if (q.cursor) params.set("cursor", q.cursor);
	return call(apiKey, `/v1/tasks?${params}`);
}

/** Every task type the server offers, with an example input and its file field. */
export async function taskTypes(apiKey: string | undefined): Promise<TaskTypeInfo[]> {
	const { types } = await call<{ types: { type: string; runs: "worker" | "pull"; input_schema: JsonSchema | null }[] }>(
		apiKey,
		"/v1/types",
	);
	return types.map((t) => ({ ...t, example: exampleOf(t.input_schema), file_field: fileField(t.input_schema) }));
}

function branches(schema: JsonSchema): JsonSchema[] {
	return [schema, ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
}

/** A value the schema accepts, from its defaults and first choices (required fields only, and those with a default). */
export function exampleOf(schema: JsonSchema | null, depth = 0): unknown {
	if (!schema || depth > 5) return {};
	if (schema.default !== undefined) return schema.default;
	if (schema.const !== undefined) return schema.const;
	if (schema.enum?.length) return schema.enum[0];
	const first = schema.anyOf?.[0] ?? schema.oneOf?.[0];
	if (first) return exampleOf(first, depth + 1);
	const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
	if (type === "object" || schema.properties) {
		const out: Record<string, unknown> = {};
		for (const [name, property] of Object.entries(schema.properties ?? {})) {
			if (schema.required?.includes(name) || property.default !== undefined) out[name] = exampleOf(property, depth + 1);
		}
		return out;
	}
	if (type === "number" || type === "integer") return schema.minimum ?? 0;
	if (type === "string") return "";
	if (type === "boolean") return false;
	if (type === "array") return [];
	return null;
}

/** The top-level input field that takes a file reference (an object with `$file`). */
export function fileField(schema: JsonSchema | null): string | null {
	for (const [name, property] of Object.entries(schema?.properties ?? {})) {
		if (branches(property).some((b) => b.properties?.$file !== undefined)) return name;
	}
	return null;
}
