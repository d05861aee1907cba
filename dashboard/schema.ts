/**
 * What the submit form reads from a type's input schema (`GET /v1/types`, JSON Schema as zod
 * writes it): an input to start from, and the field that takes an uploaded file.
 */

/** The part of JSON Schema the form looks at. */
export interface JsonSchema {
	type?: string | string[];
	properties?: Record<string, JsonSchema>;
	required?: string[];
	default?: unknown;
	enum?: unknown[];
	const?: unknown;
	anyOf?: JsonSchema[];
	oneOf?: JsonSchema[];
	minimum?: number;
}

function branches(schema: JsonSchema): JsonSchema[] {
	return [schema, ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
}

/**
 * A value the schema accepts, from its defaults and first choices: required fields, and those
 * with a default. A start for the user to edit, not a promise that it validates (a refinement
 * such as "width or height" is not in the schema).
 */
export function exampleOf(schema: JsonSchema | null, depth = 0): unknown {
	if (!schema || depth > 5) return {};
	if (schema.default !== undefined) return schema.default;
	if (schema.const !== undefined) return schema.const;
	if (schema.enum?.length) return schema.enum[0];
	const first = schema.anyOf?.find((b) => b.type !== "null") ?? schema.oneOf?.[0];
	if (first) return exampleOf(first, depth + 1);
	const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
	if (type === "object" || schema.properties) {
		const out: Record<string, unknown> = {};
		for (const [name, property] of Object.entries(schema.properties ?? {})) {
			// A file field is filled from the file picker, not typed in.
			if (fileBranch(property)) continue;
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

function fileBranch(schema: JsonSchema): boolean {
	return branches(schema).some((b) => b.properties?.$file !== undefined);
}

/** The top-level input field that takes a file reference (`{"$file": id}`), if any. */
export function fileField(schema: JsonSchema | null): string | null {
	for (const [name, property] of Object.entries(schema?.properties ?? {})) if (fileBranch(property)) return name;
	return null;
}
