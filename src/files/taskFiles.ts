import { settings } from "../config";
import { PermanentError } from "../processors/types";
import type { Json } from "../task/model";
import { storableOutput } from "../task/storable";
import { fileKey, fileRefsIn, INLINE_OUTPUT_BYTES, newFileId, type FileRef } from "./model";
import { putFile, type FileBody } from "./store";

/** A file a processor opened: its bytes as a stream, read from R2 as they are consumed. */
export interface OpenedFile {
	id: string;
	body: ReadableStream<Uint8Array>;
	bytes: number;
	content_type: string;
}

/** `ctx.files`: how a processor reads its input files and returns files of its own. */
export interface ProcessorFiles {
	/**
	 * Stores bytes or a stream as a file of this task (deleted with the task at its TTL) and
	 * returns the reference to put in the output: `{ "$file": "file_…", bytes, content_type }`.
	 * Files are not counted against MAX_OUTPUT_BYTES.
	 */
	put(body: FileBody, opts: { content_type: string }): Promise<FileRef>;
	/** Opens a file named in the input (`{ "$file": … }` or its id); a missing file fails the task for good. */
	open(ref: { $file: string } | string): Promise<OpenedFile>;
}

/** R2 deletes at most this many keys per call. */
const DELETE_BATCH = 1000;

const encoder = new TextEncoder();

/**
 * The files a task owns, kept in its object's SQLite (a `files` table made on first use, so tasks
 * without files pay nothing): file outputs, JSON outputs moved to R2, and images fetched from a
 * URL. The task object calls `prepareOutput` on a processor's result, and `deleteOwn` then
 * `releaseInputs` at expiry.
 */
export class TaskFiles {
	private tableReady = false;

	constructor(
		private readonly sql: SqlStorage,
		private readonly env: Env,
	) {}

	/** `ctx.files` for one attempt; `current()` is false once the attempt may no longer write. */
	forAttempt(taskId: string, current: () => boolean): ProcessorFiles {
		return {
			put: async (body, opts) => {
				if (!current()) throw new Error(`task ${taskId}: this attempt has ended; its files are not kept`);
				const { sha256: _sha256, ...ref } = await this.store(taskId, body, opts.content_type);
				return ref;
			},
			open: (ref) => this.open(typeof ref === "string" ? ref : ref.$file),
		};
	}

	/** Stores a file owned by this task. Recorded before the write, so even a partial write is deleted at expiry. */
	async store(taskId: string, body: FileBody, contentType: string, length?: number | null) {
		const id = newFileId();
		this.ensureTable();
		this.sql.exec("INSERT OR IGNORE INTO files (id) VALUES (?)", id);
		return putFile(this.env.FILES, id, body, {
			contentType,
			// A processor's own files have no upload limit beyond R2's; the caller bounds what it fetches.
			maxBytes: Number.MAX_SAFE_INTEGER,
			length,
			customMetadata: { task: taskId },
		});
	}

	async open(id: string): Promise<OpenedFile> {
		const object = await this.env.FILES.get(fileKey(id));
		if (!object) throw new PermanentError(`File ${id} does not exist (expired or deleted)`, "file_not_found");
		return {
			id,
			body: object.body as ReadableStream<Uint8Array>,
			bytes: object.size,
			content_type: object.httpMetadata?.contentType ?? "application/octet-stream",
		};
	}

	/**
	 * What the task stores as its output: the JSON itself up to 64 KiB, a reference to it in R2
	 * up to MAX_OUTPUT_BYTES. Larger fails `output_too_large`, not JSON fails `output_invalid`
	 * (both for good: running again returns the same).
	 */
	async prepareOutput(taskId: string, output: unknown): Promise<Json> {
		// What can be stored at all is decided in one place (task/storable.ts).
		const stored = storableOutput(output, settings(this.env).maxOutputBytes);
		if (!stored.ok) throw new PermanentError(stored.error.message, stored.error.code);
		const bytes = encoder.encode(stored.json);
		if (bytes.byteLength <= INLINE_OUTPUT_BYTES) return stored.output;
		const { sha256: _sha256, ...ref } = await this.store(taskId, bytes, "application/json");
		return ref;
	}

	/** At expiry, first: deletes the task's own files. Throws if R2 refused (the task then tries again later). */
	async deleteOwn(): Promise<void> {
		if (this.hasTable()) {
			const ids = this.sql.exec<{ id: string }>("SELECT id FROM files").toArray();
			for (let i = 0; i < ids.length; i += DELETE_BATCH) {
				await this.env.FILES.delete(ids.slice(i, i + DELETE_BATCH).map((row) => fileKey(row.id)));
			}
		}
		// The object's storage is wiped next; a task created later under the same id starts without the table.
		this.tableReady = false;
	}

	/**
	 * At expiry, once the task is gone: lets go of the uploads its input used, so none is deleted
	 * while the task can still be read. A release that fails is caught by the upload's own lease,
	 * which finds the task gone at its next check.
	 */
	async releaseInputs(taskId: string, input: unknown): Promise<void> {
		await Promise.all(
			[...fileRefsIn(input)].map((id) =>
				this.env.FILE_LEASES.getByName(id)
					.release(taskId)
					.catch((e: unknown) => console.error(`task ${taskId}: releasing file ${id} failed: ${String(e)}`)),
			),
		);
	}

	/** Ids of the files this task stored. */
	ownIds(): string[] {
		return this.hasTable()
			? this.sql
					.exec<{ id: string }>("SELECT id FROM files")
					.toArray()
					.map((row) => row.id)
			: [];
	}

	private hasTable(): boolean {
		if (this.tableReady) return true;
		this.tableReady = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files'").toArray().length > 0;
		return this.tableReady;
	}

	private ensureTable(): void {
		if (this.tableReady) return;
		this.sql.exec("CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY) WITHOUT ROWID");
		this.tableReady = true;
	}
}
