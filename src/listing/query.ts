import { settings } from "../config";
import { statsShard, type ShardListRow } from "../health/StatsShard";
import { fromBase64, toBase64Url } from "../lib/base64";
import type { TaskStatus } from "../task/model";
import type { TaskRow } from "./row";

/** A listing request, validated (src/api/routes/listing.ts). */
export interface ListQuery {
	statuses: TaskStatus[] | null;
	type: string | null;
	limit: number;
	cursor: Cursor | null;
}

/** Where a page ended: the last row's creation time and id (rows are ordered by both). */
export interface Cursor {
	createdAt: number;
	id: string;
}

const encoder = new TextEncoder();

/** The opaque `next_cursor` string of a position. */
export function encodeCursor(cursor: Cursor): string {
	return toBase64Url(encoder.encode(JSON.stringify([cursor.createdAt, cursor.id])));
}

/** The position a `cursor` string names, or null when it is not one this API made. */
export function decodeCursor(text: string, validId: (id: string) => boolean): Cursor | null {
	const bytes = fromBase64(text);
	if (!bytes) return null;
	try {
		const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
		if (!Array.isArray(value) || value.length !== 2) return null;
		const [createdAt, id] = value as unknown[];
		if (typeof createdAt !== "number" || !Number.isSafeInteger(createdAt) || createdAt < 0) return null;
		if (typeof id !== "string" || !validId(id)) return null;
		return { createdAt, id };
	} catch {
		return null;
	}
}

/** Newer first: by creation time, then by id (the same order each shard's index gives). */
function newerFirst(a: ShardListRow, b: ShardListRow): number {
	return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * One page of recent tasks, newest first. Every shard is asked for its newest `limit + 1` rows
 * past the cursor, in parallel; merged, the first `limit` are exactly the page (no shard can hold
 * a newer row it did not return), and a row beyond them means there is a next page. One small
 * read per shard, whatever the number of tasks; a shard that fails fails the page (a silently
 * partial listing would hide tasks), never a task.
 */
export async function listTasks(env: Env, q: ListQuery): Promise<{ tasks: TaskRow[]; next_cursor: string | null }> {
	const shards = settings(env).healthShards;
	const request = { statuses: q.statuses, type: q.type, before: q.cursor, limit: q.limit + 1, now: Date.now() };
	const pages = await Promise.all(Array.from({ length: shards }, (_, i) => statsShard(env, i).list(request)));
	const merged = pages.flat().sort(newerFirst);
	const page = merged.slice(0, q.limit);
	const last = page.at(-1);
	return {
		tasks: page.map((r) => JSON.parse(r.row) as TaskRow),
		next_cursor: merged.length > q.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null,
	};
}
