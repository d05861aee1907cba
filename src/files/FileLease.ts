import { DurableObject } from "cloudflare:workers";
import { settings } from "../config";
import { fileKey, type StoredFile } from "./model";

interface Lease {
	file: StoredFile;
	/** When the upload may be deleted if no task holds it. */
	expiresAt: number;
	/** Ids of the tasks whose input refers to the file. */
	holders: string[];
}

export type ClaimOutcome = "claimed" | "unknown";

/**
 * One object per uploaded file (named by its id): it decides when the upload's bytes are
 * deleted. An upload that no task uses is deleted UPLOAD_TTL_S after its upload; a task that
 * refers to it holds it until that task expires, then releases it. A holder that never releases
 * (its submit failed after the claim, or its release was lost) is checked at each alarm: a task
 * that no longer exists holds nothing. So every upload is deleted, and none while a task needs it.
 *
 * Task outputs are not leased: they belong to their task, which deletes them at its TTL.
 */
export class FileLease extends DurableObject<Env> {
	/** Records a fresh upload (optionally already held by the task it was submitted with). */
	async create(file: StoredFile, holder: string | null): Promise<void> {
		const expiresAt = Date.now() + settings(this.env).uploadTtlS * 1000;
		const lease: Lease = { file, expiresAt, holders: holder ? [holder] : [] };
		await this.ctx.storage.put("lease", lease);
		await this.ctx.storage.setAlarm(expiresAt);
	}

	/** Task `taskId` uses the file: it is kept while that task exists. Unknown once deleted. */
	async claim(taskId: string): Promise<{ outcome: ClaimOutcome; file: StoredFile | null }> {
		const lease = await this.ctx.storage.get<Lease>("lease");
		if (!lease) return { outcome: "unknown", file: null };
		if (!lease.holders.includes(taskId)) {
			lease.holders.push(taskId);
			await this.ctx.storage.put("lease", lease);
		}
		return { outcome: "claimed", file: lease.file };
	}

	/** Task `taskId` is gone: the file is deleted now if nothing else holds it and its upload TTL has passed. */
	async release(taskId: string): Promise<void> {
		const lease = await this.ctx.storage.get<Lease>("lease");
		if (!lease) return;
		lease.holders = lease.holders.filter((h) => h !== taskId);
		if (lease.holders.length === 0 && Date.now() >= lease.expiresAt) await this.deleteFile(lease);
		else await this.ctx.storage.put("lease", lease);
	}

	/** The upload's details (null once deleted). */
	async describe(): Promise<(StoredFile & { expires_at: string; holders: number }) | null> {
		const lease = await this.ctx.storage.get<Lease>("lease");
		return lease ? { ...lease.file, expires_at: new Date(lease.expiresAt).toISOString(), holders: lease.holders.length } : null;
	}

	override async alarm(): Promise<void> {
		const lease = await this.ctx.storage.get<Lease>("lease");
		if (!lease) return;
		const now = Date.now();
		if (now < lease.expiresAt) {
			await this.ctx.storage.setAlarm(lease.expiresAt);
			return;
		}
		const alive: string[] = [];
		for (const holder of lease.holders) {
			if (await this.taskExists(holder)) alive.push(holder);
		}
		if (alive.length === 0) {
			await this.deleteFile(lease);
			return;
		}
		lease.holders = alive;
		await this.ctx.storage.put("lease", lease);
		// Holders release the file when they expire; this later check only catches a lost release.
		await this.ctx.storage.setAlarm(now + settings(this.env).uploadTtlS * 1000);
	}

	private async taskExists(id: string): Promise<boolean> {
		try {
			return (await this.env.TASKS.getByName(id).waitFor(0)) !== null;
		} catch (e) {
			// Unsure: keep the file and ask again at the next alarm.
			console.error(`file lease: could not check task ${id}: ${String(e)}`);
			return true;
		}
	}

	/** Deletes the bytes first: if that fails the alarm throws and is retried, the lease kept. */
	private async deleteFile(lease: Lease): Promise<void> {
		await this.env.FILES.delete(fileKey(lease.file.$file));
		await this.ctx.storage.deleteAlarm();
		await this.ctx.storage.deleteAll();
	}
}
