import { z } from "zod";

/**
 * Files: what a file id is, where its bytes live in R2, and how task inputs and outputs refer to
 * a file (`{ "$file": "file_…" }`). Every file, upload or task output, is one R2 object under
 * `files/{id}`, so `GET /v1/files/{id}` serves either.
 */

export const FILE_ID = /^file_[0-9a-f]{32}$/;

/** A new, unguessable file id. */
export function newFileId(): string {
	return `file_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The R2 key of a file. */
export function fileKey(id: string): string {
	return `files/${id}`;
}

/** How an output names a file: what a client needs to fetch and use it. */
export interface FileRef {
	$file: string;
	bytes: number;
	content_type: string;
}

/** A stored file as its upload answers: the reference plus the digest of its bytes. */
export interface StoredFile extends FileRef {
	sha256: string;
}

/** JSON outputs larger than this are moved to R2 and replaced by a reference. */
export const INLINE_OUTPUT_BYTES = 64 * 1024;

/** A file reference in a task's input: `$file` is an id; other fields (bytes, content_type) may ride along. */
export const FileRefInput = z.looseObject({
	$file: z.string().regex(FILE_ID, 'must be a file id ("file_" and 32 hex digits) from POST /v1/files'),
});

/** True for an object whose `$file` is a string: a file reference, whatever else it carries. */
export function isFileRef(value: unknown): value is { $file: string } {
	return typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as { $file?: unknown }).$file === "string";
}

/** Every `$file` string anywhere in a JSON value (inputs are depth-limited at submit, so recursion is safe). */
export function fileRefsIn(value: unknown, found: Set<string> = new Set()): Set<string> {
	if (isFileRef(value)) found.add(value.$file);
	else if (Array.isArray(value)) for (const item of value) fileRefsIn(item, found);
	else if (typeof value === "object" && value !== null) for (const item of Object.values(value)) fileRefsIn(item, found);
	return found;
}

/** A copy of a JSON value with each file reference's `$file` replaced by `rename($file)`. */
export function renameFileRefs(value: unknown, rename: (name: string) => string): unknown {
	if (isFileRef(value)) return { ...value, $file: rename(value.$file) };
	if (Array.isArray(value)) return value.map((item) => renameFileRefs(item, rename));
	if (typeof value === "object" && value !== null) {
		return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renameFileRefs(v, rename)]));
	}
	return value;
}

/** Lowercase hex of a digest. */
export function hex(digest: ArrayBuffer): string {
	return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
