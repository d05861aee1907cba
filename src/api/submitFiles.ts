import type { Context } from "hono";
import type { Settings } from "../config";
import { fileRefsIn, hex, newFileId, renameFileRefs } from "../files/model";
import { FileTooLargeError, limitBytes } from "../files/store";
import { claimFiles, storeUpload } from "../files/uploads";
import type { TaskSpec } from "../task/model";
import { ApiError } from "./errors";
import { fingerprint, parseJson, tooLarge } from "./request";
import { toSpec } from "./tasks";

/**
 * A submission's files. `POST /v1/tasks` takes JSON, or `multipart/form-data` with a `json` part
 * (the usual body) and file parts that the input names by part name (`{"$file": "photo"}`).
 * Everything is checked before anything is stored: the body and the type's input schema, every
 * part named and every name a part or an existing file (else 400 `file_not_found`). Then the
 * parts are stored as uploads held by the task, the uploads the input names are claimed for it,
 * and the task is created.
 */

export interface SubmitForm {
	body: unknown;
	parts: Map<string, File>;
}

export function isMultipart(c: Context): boolean {
	return /^multipart\/form-data\s*;/i.test(c.req.header("content-type") ?? "");
}

/**
 * Reads a multipart submission: at most MAX_UPLOAD_BYTES in all (413), the `json` part at most
 * MAX_BODY_BYTES. The parts sit in memory once, as the runtime parses them; they are streamed
 * from there to R2.
 */
export async function readSubmitForm(c: Context, cfg: Settings): Promise<SubmitForm> {
	const declared = Number(c.req.header("content-length"));
	if (declared > cfg.maxUploadBytes) throw tooLarge(cfg.maxUploadBytes);
	const raw = c.req.raw.body as ReadableStream<Uint8Array> | null;
	if (!raw) throw new ApiError(400, "invalid_multipart", "The multipart body is empty");
	let form: FormData;
	try {
		const limited = new Request(c.req.url, {
			method: "POST",
			headers: { "content-type": c.req.header("content-type") ?? "" },
			body: limitBytes(raw, cfg.maxUploadBytes),
		});
		form = await limited.formData();
	} catch (e) {
		if (e instanceof FileTooLargeError) throw tooLarge(cfg.maxUploadBytes);
		throw new ApiError(
			400,
			"invalid_multipart",
			`The body is not valid multipart/form-data: ${e instanceof Error ? e.message : String(e)}`,
		);
	}
	let json: unknown = undefined;
	const parts = new Map<string, File>();
	for (const [name, value] of form) {
		if (name === "json") {
			if (json !== undefined) throw new ApiError(400, "invalid_multipart", "Send one `json` part");
			const bytes = typeof value === "string" ? new TextEncoder().encode(value) : new Uint8Array(await value.arrayBuffer());
			if (bytes.byteLength > cfg.maxBodyBytes) throw tooLarge(cfg.maxBodyBytes);
			json = parseJson(bytes);
		} else if (typeof value === "string") {
			throw new ApiError(400, "invalid_multipart", `Part "${name}" is not a file: put fields in the json part`);
		} else if (parts.has(name)) {
			throw new ApiError(400, "invalid_multipart", `Two parts are named "${name}"`);
		} else {
			parts.set(name, value);
		}
	}
	if (json === undefined) throw new ApiError(400, "invalid_multipart", "A multipart submit needs a `json` part with the task");
	return { body: json, parts };
}

/** SHA-256 of a part, streamed (the part is not copied). */
async function partDigest(part: File): Promise<string> {
	const digest = new crypto.DigestStream("SHA-256");
	await part.stream().pipeTo(digest);
	return hex(await digest.digest);
}

/**
 * Validates a submission and makes its files the task's. Returns the spec and the uploads made
 * from its parts (the caller lets them go if the task already existed).
 */
export async function specWithFiles(
	env: Env,
	cfg: Settings,
	body: unknown,
	form: SubmitForm | null,
): Promise<{ spec: TaskSpec; stored: string[] }> {
	const partIds = new Map<string, string>();
	let submitted = body;
	if (form) {
		const input = (body as { input?: unknown } | null)?.input;
		const named = fileRefsIn(input);
		for (const name of form.parts.keys()) {
			if (!named.has(name))
				throw new ApiError(400, "invalid_multipart", `Part "${name}" is not named by any {"$file": "${name}"} in the input`);
			partIds.set(name, newFileId());
		}
		if (typeof body === "object" && body !== null && !Array.isArray(body)) {
			submitted = { ...body, input: renameFileRefs(input, (name) => partIds.get(name) ?? name) };
		}
	}
	const spec = await toSpec(env, submitted);
	const parts = new Set(partIds.values());
	const named = [...fileRefsIn(spec.input)].filter((id) => !parts.has(id));
	const missing = await claimFiles(env, spec.id, named);
	if (missing.length > 0) {
		throw new ApiError(400, "file_not_found", `Unknown file${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`, { files: missing });
	}
	if (!form) return { spec, stored: [] };
	// The parts' contents, not their fresh ids, identify the submission: the same multipart
	// submit with the same id finds its task again instead of conflicting with it.
	const digests = new Map<string, string>();
	for (const [name, part] of form.parts) digests.set(name, await partDigest(part));
	const { id: _id, ...rest } = body as Record<string, unknown>;
	spec.fingerprint = await fingerprint({ ...rest, input: renameFileRefs(rest.input, (name) => `sha256:${digests.get(name) ?? name}`) });
	const stored: string[] = [];
	try {
		for (const [name, part] of form.parts) {
			const id = partIds.get(name) ?? newFileId();
			await storeUpload(env, part.stream() as ReadableStream<Uint8Array>, {
				id,
				contentType: part.type || "application/octet-stream",
				length: part.size,
				holder: spec.id,
			});
			stored.push(id);
		}
	} catch (e) {
		if (e instanceof FileTooLargeError) throw tooLarge(cfg.maxUploadBytes);
		throw e;
	}
	return { spec, stored };
}
