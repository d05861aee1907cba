/**
 * The counter layer: every operation Cloudflare bills, counted as the code under test makes it.
 * Test-only: `test/cost/entry.ts` wraps the worker's handlers, its Durable Object classes and
 * every binding they are handed, so `src/` runs unchanged and pays nothing for being counted.
 *
 * What is counted, and where (billing rules: test/cost/prices.ts):
 * - Worker invocations: the fetch handler and each queue batch (the entry's wrappers).
 * - Durable Object requests: every RPC method call and `fetch()` on a stub, counted by the
 *   caller (every stub comes from a wrapped namespace); alarm invocations and incoming WebSocket
 *   events (message, close, error), counted in the object.
 * - SQLite rows read and written: each cursor's own `rowsRead` / `rowsWritten` (what the runtime
 *   reports and Cloudflare bills), plus one row written per `setAlarm` / `deleteAlarm` and per
 *   row removed by `deleteAll` (the storage pricing: "each setAlarm() is billed as a single row
 *   written", "deletes are counted as rows written").
 * - Queue operations: a write per message sent, a read per message delivered, a delete per
 *   message acked, each per 64 KB (body + ~100 bytes of metadata).
 * - R2 operations: class A (writes, lists) and class B (reads).
 * - Log lines: every `console` line the code writes (the task-end line, errors), each one Workers
 *   Logs event; the execution log each invocation adds is derived from the invocations counted.
 * - Time awake: an object is awake (billed for duration) while it handles an event, has a
 *   `setTimeout`/`setInterval` pending, awaits an outgoing `fetch()` or stub call, or has a
 *   `waitUntil` promise open: the conditions under which Cloudflare's runtime may not hibernate
 *   it. Timers and fetches are attributed to the object whose code started them through
 *   AsyncLocalStorage (the cost project runs with `nodejs_als`).
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** What one Durable Object class was asked to do and what it stored. */
export interface ClassUsage {
	/** RPC method calls on its stubs, by method. */
	rpc: Record<string, number>;
	/** `stub.fetch()` calls (HTTP to the object; a WebSocket upgrade is one of these). */
	fetches: number;
	alarms: number;
	/** Incoming WebSocket messages, closes and errors (billed 20 to a request). */
	wsIncoming: number;
	rowsRead: number;
	/** Rows written by SQL statements. */
	rowsWritten: number;
	/** `setAlarm` / `deleteAlarm` calls and rows removed by `deleteAll`, each billed as a row written. */
	storageWrites: number;
	/** Distinct objects that handled at least one event. */
	objects: number;
	/** Sum over its objects of the time each was awake (not hibernatable). */
	awakeMs: number;
}

export interface Usage {
	worker: { fetch: number; queue: number };
	classes: Record<string, ClassUsage>;
	/** Queue operations, each per 64 KB: written (send), read (delivered), deleted (acked); and retries asked for. */
	queue: { writes: number; reads: number; deletes: number; retries: number };
	r2: { classA: number; classB: number };
	/** Lines written to the console (each a Workers Logs event). */
	logLines: number;
}

/** Bytes that make one queue operation, and the metadata each message carries (Queues pricing). */
const QUEUE_CHUNK_BYTES = 64_000;
const QUEUE_METADATA_BYTES = 100;

const R2_CLASS_A = new Set(["put", "list", "createMultipartUpload", "uploadPart", "completeMultipartUpload", "abortMultipartUpload"]);
const R2_CLASS_B = new Set(["get", "head"]);

function emptyClass(): ClassUsage {
	return { rpc: {}, fetches: 0, alarms: 0, wsIncoming: 0, rowsRead: 0, rowsWritten: 0, storageWrites: 0, objects: 0, awakeMs: 0 };
}

/** One object's awake clock: awake while at least one hold is open. */
interface Clock {
	className: string;
	holds: number;
	since: number;
	totalMs: number;
	/** Cursors whose row counts are not yet added up. */
	cursors: { cursor: SqlStorageCursor<Record<string, SqlStorageValue>>; query: string }[];
}

/** One SQL statement as counted, when tracing. */
export interface TracedStatement {
	object: string;
	query: string;
	rowsRead: number;
	rowsWritten: number;
}

export class Meter {
	private usage: Usage = Meter.empty();
	private readonly clocks = new Map<string, Clock>();
	/** The object whose code is running, for timers and fetches it starts. */
	readonly current = new AsyncLocalStorage<string>();
	/** Objects whose storage was deleted (`deleteAll`: the task expired), since the last reset. */
	readonly deleted = new Set<string>();
	/** Every statement with its row counts, while tracing (`trace()`); to find where rows go. */
	private traced: TracedStatement[] | null = null;

	/** Records every SQL statement from now on (returned by `traceLog`). */
	trace(on = true): void {
		this.traced = on ? [] : null;
	}

	traceLog(): TracedStatement[] {
		this.harvestAll();
		return [...(this.traced ?? [])];
	}

	static empty(): Usage {
		return {
			worker: { fetch: 0, queue: 0 },
			classes: {},
			queue: { writes: 0, reads: 0, deletes: 0, retries: 0 },
			r2: { classA: 0, classB: 0 },
			logLines: 0,
		};
	}

	/** Starts counting afresh. Objects awake right now count from now. */
	reset(): void {
		this.harvestAll();
		this.usage = Meter.empty();
		this.deleted.clear();
		const now = Date.now();
		for (const [key, clock] of this.clocks) {
			if (clock.holds === 0) this.clocks.delete(key);
			else {
				clock.totalMs = 0;
				clock.since = now;
			}
		}
	}

	/** Everything counted since the last reset. */
	snapshot(): Usage {
		this.harvestAll();
		const out = structuredClone(this.usage);
		const now = Date.now();
		const seen = new Map<string, number>();
		for (const clock of this.clocks.values()) {
			const c = (out.classes[clock.className] ??= emptyClass());
			c.awakeMs += clock.totalMs + (clock.holds > 0 ? now - clock.since : 0);
			seen.set(clock.className, (seen.get(clock.className) ?? 0) + 1);
		}
		for (const [name, n] of seen) out.classes[name]!.objects = n;
		return out;
	}

	/** Objects holding something open right now (an event, a timer, a fetch, a waitUntil). */
	awakeObjects(): string[] {
		return [...this.clocks].filter(([, c]) => c.holds > 0).map(([key]) => key);
	}

	private cls(name: string): ClassUsage {
		return (this.usage.classes[name] ??= emptyClass());
	}

	private clock(key: string, className: string): Clock {
		let clock = this.clocks.get(key);
		if (!clock) {
			clock = { className, holds: 0, since: 0, totalMs: 0, cursors: [] };
			this.clocks.set(key, clock);
		}
		return clock;
	}

	/** Keeps object `key` awake until the returned release is called (once; later calls do nothing). */
	hold(key: string, className = classOf(key)): () => void {
		const clock = this.clock(key, className);
		if (clock.holds++ === 0) clock.since = Date.now();
		let released = false;
		return () => {
			if (released) return;
			released = true;
			if (--clock.holds === 0) clock.totalMs += Date.now() - clock.since;
		};
	}

	/** Holds `key` awake until `promise` settles; returns it. */
	holdUntil<T>(key: string, promise: Promise<T>): Promise<T> {
		const release = this.hold(key);
		return promise.finally(release);
	}

	/** Runs `fn` as object `key` (its timers and fetches are its own), awake until what it returns settles. */
	within<T>(key: string, fn: () => T): T {
		return this.current.run(key, () => {
			const release = this.hold(key);
			let result: T;
			try {
				result = fn();
			} catch (e) {
				release();
				throw e;
			}
			if (isThenable(result)) return Promise.resolve(result).finally(release) as T;
			release();
			return result;
		});
	}

	// ---- what the entry's wrappers report

	workerInvocation(kind: "fetch" | "queue"): void {
		this.usage.worker[kind] += 1;
	}

	rpc(className: string, method: string): void {
		const c = this.cls(className);
		c.rpc[method] = (c.rpc[method] ?? 0) + 1;
	}

	objectFetch(className: string): void {
		this.cls(className).fetches += 1;
	}

	alarm(className: string): void {
		this.cls(className).alarms += 1;
	}

	webSocketIncoming(className: string): void {
		this.cls(className).wsIncoming += 1;
	}

	storageDeleted(key: string): void {
		this.deleted.add(key);
	}

	storageWrites(className: string, rows: number): void {
		this.cls(className).storageWrites += rows;
	}

	/** A cursor opened by object `key`; its row counts are read once the code has consumed it. */
	cursor(key: string, cursor: SqlStorageCursor<Record<string, SqlStorageValue>>, query: string): void {
		const clock = this.clock(key, classOf(key));
		clock.cursors.push({ cursor, query });
		// Code reads a cursor in the same turn it opens it; counting then lets the cursor go.
		queueMicrotask(() => this.harvest(key, clock));
	}

	private harvest(key: string, clock: Clock): void {
		if (clock.cursors.length === 0) return;
		const c = this.cls(clock.className);
		for (const { cursor, query } of clock.cursors) {
			c.rowsRead += cursor.rowsRead;
			c.rowsWritten += cursor.rowsWritten;
			this.traced?.push({
				object: key,
				query: query.replace(/\s+/g, " ").trim(),
				rowsRead: cursor.rowsRead,
				rowsWritten: cursor.rowsWritten,
			});
		}
		clock.cursors = [];
	}

	private harvestAll(): void {
		for (const [key, clock] of this.clocks) this.harvest(key, clock);
	}

	queueWrite(body: unknown): void {
		this.usage.queue.writes += queueChunks(body);
	}

	queueRead(body: unknown): void {
		this.usage.queue.reads += queueChunks(body);
	}

	queueDelete(body: unknown): void {
		this.usage.queue.deletes += queueChunks(body);
	}

	queueRetry(): void {
		this.usage.queue.retries += 1;
	}

	logLine(): void {
		this.usage.logLines += 1;
	}

	r2(method: string): void {
		if (R2_CLASS_A.has(method)) this.usage.r2.classA += 1;
		else if (R2_CLASS_B.has(method)) this.usage.r2.classB += 1;
	}
}

/** Object keys are `Class:name`. */
export function classOf(key: string): string {
	return key.slice(0, key.indexOf(":"));
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
	return typeof (value as { then?: unknown } | null)?.then === "function";
}

function queueChunks(body: unknown): number {
	const bytes = new TextEncoder().encode(JSON.stringify(body) ?? "").byteLength + QUEUE_METADATA_BYTES;
	return Math.max(1, Math.ceil(bytes / QUEUE_CHUNK_BYTES));
}

/** The one meter of this isolate: the entry's wrappers report to it, the tests read it. */
export const meter = new Meter();
