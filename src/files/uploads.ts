import { settings } from "../config";
import { fileKey, newFileId, type StoredFile } from "./model";
import { putFile } from "./store";

/**
 * Uploads: a client's file stored under a fresh id, with a lease (FileLease) that deletes it
 * UPLOAD_TTL_S later unless a task holds it. `holder` names the task it was submitted with
 * (multipart submit), so it is held from the start.
 */
export async function storeUpload(
	env: Env,
	body: ReadableStream<Uint8Array>,
	opts: { contentType: string; length: number | null; holder?: string | null; id?: string },
): Promise<StoredFile> {
	const id = opts.id ?? newFileId();
	const file = await putFile(env.FILES, id, body, {
		contentType: opts.contentType,
		maxBytes: settings(env).maxUploadBytes,
		length: opts.length,
		customMetadata: { upload: new Date().toISOString() },
	});
	try {
		await env.FILE_LEASES.getByName(id).create(file, opts.holder ?? null);
	} catch (e) {
		// Without its lease nothing would ever delete it: take the bytes back.
		await env.FILES.delete(fileKey(id)).catch(() => {});
		throw e;
	}
	return file;
}

/**
 * Task `taskId` will use these files: each upload is held for it; a task's output file (not
 * leased: it lives as long as its task) only has to exist. Returns the ids that exist nowhere.
 */
export async function claimFiles(env: Env, taskId: string, ids: Iterable<string>): Promise<string[]> {
	const missing: string[] = [];
	await Promise.all(
		[...ids].map(async (id) => {
			const { outcome } = await env.FILE_LEASES.getByName(id).claim(taskId);
			if (outcome === "claimed") return;
			if (!(await env.FILES.head(fileKey(id)))) missing.push(id);
		}),
	);
	return missing.sort();
}

/** Lets go of uploads that turned out unused (a repeated multipart submit): deleted once their upload TTL passes. */
export async function releaseFiles(env: Env, taskId: string, ids: Iterable<string>): Promise<void> {
	await Promise.all([...ids].map((id) => env.FILE_LEASES.getByName(id).release(taskId)));
}
