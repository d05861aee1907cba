/**
 * Wrappers that report to the meter (test/cost/meter.ts): around bindings (Durable Object
 * namespaces and their stubs, queue producers, R2 buckets), a Durable Object's state (SQL
 * cursors, alarms, waitUntil), its class (events the runtime delivers), the worker's handlers,
 * and the isolate's timers and fetch. Only the cost project's entry (test/cost/entry.ts) uses them.
 */
import { DurableObject as RuntimeDurableObject } from "cloudflare:workers";
import { classOf, meter } from "./meter";

function isThenable(value: unknown): value is PromiseLike<unknown> {
	return typeof (value as { then?: unknown } | null)?.then === "function";
}

type AnyRecord = Record<PropertyKey, unknown>;

/** Which class each Durable Object binding addresses (the binding names of wrangler.toml). */
export const BINDING_CLASSES: Record<string, string> = {
	TASKS: "TaskCoordinator",
	STATS: "StatsShard",
	HUBS: "SubscriptionHub",
	WORK_LANE: "WorkLane",
	FILE_LEASES: "FileLease",
	SCHEDULER: "Scheduler",
};

/** Events the runtime delivers to an object (the rest of its methods are called by stubs). */
const RUNTIME_EVENTS = new Set(["alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

function isNamespace(v: unknown): v is DurableObjectNamespace {
	return typeof (v as AnyRecord | null)?.getByName === "function" && typeof (v as AnyRecord).idFromName === "function";
}
function isQueue(v: unknown): v is Queue {
	return typeof (v as AnyRecord | null)?.send === "function" && typeof (v as AnyRecord).sendBatch === "function";
}
function isR2(v: unknown): v is R2Bucket {
	return typeof (v as AnyRecord | null)?.createMultipartUpload === "function" && typeof (v as AnyRecord).head === "function";
}

/**
 * A stub whose every RPC call and fetch is a counted request to `className`. A call made by an
 * object (`owner`) also keeps that object awake until the answer comes back.
 */
function wrapStub<T extends object>(stub: T, className: string, owner: string | null): T {
	return new Proxy(stub, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (typeof value !== "function" || prop === "then" || typeof prop === "symbol") return value;
			return (...args: unknown[]) => {
				if (prop === "fetch") meter.objectFetch(className);
				else meter.rpc(className, prop);
				// Reflect.apply: on an RPC method, `.apply` would itself be taken for a remote method.
				const result = Reflect.apply(value as (...a: unknown[]) => unknown, target, args) as unknown;
				if (owner && isThenable(result)) return meter.holdUntil(owner, Promise.resolve(result));
				return result;
			};
		},
	});
}

function wrapNamespace(ns: DurableObjectNamespace, className: string, owner: string | null): DurableObjectNamespace {
	return new Proxy(ns, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (prop === "getByName" || prop === "get") {
				return (...args: unknown[]) => wrapStub((value as (...a: unknown[]) => object).apply(target, args), className, owner);
			}
			return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
		},
	});
}

function wrapQueue(queue: Queue, owner: string | null): Queue {
	return new Proxy(queue, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (prop === "send") {
				return (body: unknown, options?: QueueSendOptions) => {
					meter.queueWrite(body);
					const sent = target.send(body, options);
					return owner ? meter.holdUntil(owner, sent) : sent;
				};
			}
			if (prop === "sendBatch") {
				return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
					const list = [...messages];
					for (const m of list) meter.queueWrite(m.body);
					const sent = target.sendBatch(list, options);
					return owner ? meter.holdUntil(owner, sent) : sent;
				};
			}
			return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
		},
	});
}

function wrapR2(bucket: R2Bucket, owner: string | null): R2Bucket {
	return new Proxy(bucket, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (typeof value !== "function" || typeof prop === "symbol") return value;
			return (...args: unknown[]) => {
				meter.r2(prop);
				const result = (value as (...a: unknown[]) => unknown).apply(target, args);
				if (owner && isThenable(result)) return meter.holdUntil(owner, Promise.resolve(result));
				return result;
			};
		},
	});
}

const wrappedEnvs = new WeakMap<object, Map<string | null, Env>>();

/** `env` with every binding counted; `owner` is the object whose code holds this env (null: the worker). */
export function wrapEnv(env: Env, owner: string | null): Env {
	let byOwner = wrappedEnvs.get(env);
	if (!byOwner) wrappedEnvs.set(env, (byOwner = new Map()));
	const known = byOwner.get(owner);
	if (known) return known;
	const cache = new Map<PropertyKey, unknown>();
	const wrapped = new Proxy(env, {
		get(target, prop) {
			if (cache.has(prop)) return cache.get(prop);
			const value = Reflect.get(target, prop) as unknown;
			let out = value;
			if (typeof prop === "string" && isNamespace(value)) out = wrapNamespace(value, BINDING_CLASSES[prop] ?? prop, owner);
			else if (isQueue(value)) out = wrapQueue(value, owner);
			else if (isR2(value)) out = wrapR2(value, owner);
			cache.set(prop, out);
			return out;
		},
	});
	byOwner.set(owner, wrapped);
	return wrapped;
}

/** Rows in the object's own tables: what `deleteAll` removes. Read past the meter (not billed as the code's reads). */
function userRows(sql: SqlStorage): number {
	const tables = sql
		.exec<{ name: string }>(
			"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'",
		)
		.toArray();
	let rows = 0;
	for (const { name } of tables) rows += sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM "${name.replaceAll('"', '""')}"`).one().n;
	return rows;
}

function wrapSql(sql: SqlStorage, key: string): SqlStorage {
	return new Proxy(sql, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (prop === "exec") {
				return (query: string, ...bindings: unknown[]) => {
					const cursor = target.exec(query, ...bindings);
					meter.cursor(key, cursor, query);
					return cursor;
				};
			}
			return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
		},
	});
}

function wrapStorage(storage: DurableObjectStorage, key: string): DurableObjectStorage {
	const className = classOf(key);
	const sql = wrapSql(storage.sql, key);
	return new Proxy(storage, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (prop === "sql") return sql;
			if (typeof value !== "function") return value;
			const fn = (value as (...a: unknown[]) => unknown).bind(target);
			if (prop === "setAlarm" || prop === "deleteAlarm") {
				return (...args: unknown[]) => {
					meter.storageWrites(className, 1);
					return fn(...args);
				};
			}
			if (prop === "deleteAll") {
				return async (...args: unknown[]) => {
					const alarm = await target.getAlarm();
					meter.storageWrites(className, userRows(target.sql) + (alarm === null ? 0 : 1));
					const done = await fn(...args);
					meter.storageDeleted(key);
					return done;
				};
			}
			if (prop === "put" || prop === "delete") {
				return (...args: unknown[]) => {
					const keys = typeof args[0] === "string" ? 1 : Array.isArray(args[0]) ? args[0].length : Object.keys(args[0] as object).length;
					meter.storageWrites(className, keys);
					return fn(...args);
				};
			}
			return fn;
		},
	});
}

/** The object's state with its storage counted and its `waitUntil` promises keeping it awake. */
export function wrapState(ctx: DurableObjectState, key: string): DurableObjectState {
	const storage = wrapStorage(ctx.storage, key);
	return new Proxy(ctx, {
		get(target, prop) {
			const value = Reflect.get(target, prop) as unknown;
			if (prop === "storage") return storage;
			if (prop === "waitUntil") return (promise: Promise<unknown>) => target.waitUntil(meter.holdUntil(key, promise));
			return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
		},
	});
}

type ObjectClass = new (ctx: DurableObjectState, env: Env) => RuntimeDurableObject<Env>;

/** Every method a class defines (its own and inherited, up to the runtime's base class). */
function methodNames(proto: object): string[] {
	const names = new Set<string>();
	for (
		let p: object | null = proto;
		p && p !== RuntimeDurableObject.prototype && p !== Object.prototype;
		p = Object.getPrototypeOf(p) as object | null
	) {
		for (const name of Object.getOwnPropertyNames(p)) {
			if (name === "constructor") continue;
			const d = Object.getOwnPropertyDescriptor(p, name);
			if (d && typeof d.value === "function") names.add(name);
		}
	}
	return [...names];
}

/** The wrapped state and env each object gets, by the real state the runtime created it with. */
const wrappedStates = new WeakMap<DurableObjectState, { key: string; ctx: DurableObjectState; env: Env }>();
const realStates = new WeakMap<object, DurableObjectState>();
const objectKeys = new WeakMap<object, string>();

/**
 * Stands between the runtime's `DurableObject` and a class of ours. The runtime's base class
 * accepts only its own state object, so the class hands its wrapped state up to here, which gives
 * the runtime the real one and then sets `this.ctx` / `this.env` to the wrapped ones before the
 * class's own field initialisers read them.
 */
class CountedBase extends RuntimeDurableObject<Env> {
	constructor(ctx: DurableObjectState, env: Env) {
		const real = realStates.get(ctx) ?? ctx;
		super(real, env);
		const wrapped = wrappedStates.get(real);
		if (wrapped) {
			Object.defineProperty(this, "ctx", { value: wrapped.ctx, writable: false, configurable: true });
			Object.defineProperty(this, "env", { value: wrapped.env, writable: false, configurable: true });
			objectKeys.set(this, wrapped.key);
		}
	}
}

/** True once `instrument` has rewired `cls` (its objects run counted). */
export function isInstrumented(cls: unknown): boolean {
	return typeof cls === "function" && Object.getPrototypeOf(cls) === CountedBase;
}

/**
 * `Base` rewired to run counted: its state and env wrapped, runtime events (alarms, WebSocket
 * messages) counted, and every method run as this object (so the timers and fetches it starts
 * keep it awake) and awake until the method's promise settles. Returns the class to export
 * under the binding's class name: the runtime constructs it with the real state.
 */
export function instrument<C extends ObjectClass>(Base: C, className: string): C {
	if (Object.getPrototypeOf(Base) !== RuntimeDurableObject) throw new Error(`${className} must extend DurableObject directly`);
	Object.setPrototypeOf(Base, CountedBase);
	Object.setPrototypeOf(Base.prototype, CountedBase.prototype);
	const Counted = class extends (Base as ObjectClass) {
		constructor(ctx: DurableObjectState, env: Env) {
			const key = `${className}:${ctx.id.name ?? ctx.id.toString()}`;
			const wrapped = { key, ctx: wrapState(ctx, key), env: wrapEnv(env, key) };
			wrappedStates.set(ctx, wrapped);
			realStates.set(wrapped.ctx, ctx);
			super(wrapped.ctx, wrapped.env);
		}
	};
	for (const name of methodNames(Base.prototype)) {
		const original = (Base.prototype as AnyRecord)[name] as (...a: unknown[]) => unknown;
		Object.defineProperty(Counted.prototype, name, {
			configurable: true,
			writable: true,
			value: function (this: object, ...args: unknown[]) {
				const key = objectKeys.get(this);
				if (!key) return original.apply(this, args);
				if (name === "alarm") meter.alarm(className);
				else if (RUNTIME_EVENTS.has(name)) meter.webSocketIncoming(className);
				return meter.within(key, () => original.apply(this, args));
			},
		});
	}
	Object.defineProperty(Counted, "name", { value: className });
	return Counted as unknown as C;
}

/** The worker's default export with each invocation counted and its env wrapped. */
export function instrumentWorker(worker: ExportedHandler<Env, unknown>): ExportedHandler<Env, unknown> {
	return {
		fetch(request, env, ctx) {
			meter.workerInvocation("fetch");
			if (!worker.fetch) throw new Error("the worker has no fetch handler");
			return worker.fetch(request, wrapEnv(env, null), ctx);
		},
		async queue(batch, env, ctx) {
			meter.workerInvocation("queue");
			if (!worker.queue) throw new Error("the worker has no queue handler");
			for (const m of batch.messages) meter.queueRead(m.body);
			const settled = new Set<Message<unknown>>();
			const messages = batch.messages.map((m) => countedMessage(m, settled));
			const counted: MessageBatch<unknown> = {
				queue: batch.queue,
				metadata: batch.metadata,
				messages,
				ackAll: () => {
					for (const m of messages) m.ack();
				},
				retryAll: (options) => {
					for (const m of messages) m.retry(options);
				},
			};
			try {
				await worker.queue(counted, wrapEnv(env, null), ctx);
			} catch (e) {
				for (const m of batch.messages) if (!settled.has(m)) meter.queueRetry();
				throw e;
			}
			// A message neither acked nor retried is acked when the handler returns.
			for (const m of batch.messages) if (!settled.has(m)) meter.queueDelete(m.body);
		},
	};
}

function countedMessage(m: Message<unknown>, settled: Set<Message<unknown>>): Message<unknown> {
	return {
		get id() {
			return m.id;
		},
		get timestamp() {
			return m.timestamp;
		},
		get body() {
			return m.body;
		},
		get attempts() {
			return m.attempts;
		},
		ack() {
			if (!settled.has(m)) meter.queueDelete(m.body);
			settled.add(m);
			m.ack();
		},
		retry(options?: QueueRetryOptions) {
			if (!settled.has(m)) meter.queueRetry();
			settled.add(m);
			m.retry(options);
		},
	};
}

let consoleInstalled = false;

/**
 * Counts every console line (each is a Workers Logs event), and keeps the task-end lines out of
 * the test output: one per task, a thousand in the burst, and a line still on its way as the
 * runtime shuts down races the runner's log channel.
 */
export function installLogCount(): void {
	if (consoleInstalled) return;
	consoleInstalled = true;
	for (const level of ["log", "info", "warn", "error", "debug"] as const) {
		const write = console[level].bind(console);
		console[level] = (...args: unknown[]) => {
			meter.logLine();
			if (typeof args[0] === "string" && args[0].startsWith('{"event":"task.end"')) return;
			write(...args);
		};
	}
}

let timersInstalled = false;

/**
 * Makes the isolate's timers and fetch keep awake the object that started them: a pending
 * `setTimeout`/`setInterval` or an awaited `fetch()` is what stops Cloudflare from hibernating it.
 */
export function installTimerAndFetchHolds(): void {
	if (timersInstalled) return;
	timersInstalled = true;
	const g = globalThis as unknown as AnyRecord;
	const realSetTimeout = globalThis.setTimeout.bind(globalThis);
	const realClearTimeout = globalThis.clearTimeout.bind(globalThis);
	const realSetInterval = globalThis.setInterval.bind(globalThis);
	const realClearInterval = globalThis.clearInterval.bind(globalThis);
	const realFetch = globalThis.fetch.bind(globalThis);
	const releases = new Map<unknown, () => void>();

	g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
		const key = meter.current.getStore();
		if (!key) return realSetTimeout(fn, ms, ...args);
		const release = meter.hold(key);
		const id = realSetTimeout(() => {
			releases.delete(id);
			try {
				fn(...args);
			} finally {
				release();
			}
		}, ms);
		releases.set(id, release);
		return id;
	};
	g.clearTimeout = (id: unknown) => {
		releases.get(id)?.();
		releases.delete(id);
		realClearTimeout(id as number);
	};
	g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
		const key = meter.current.getStore();
		const id = realSetInterval(fn, ms, ...args);
		if (key) releases.set(id, meter.hold(key));
		return id;
	};
	g.clearInterval = (id: unknown) => {
		releases.get(id)?.();
		releases.delete(id);
		realClearInterval(id as number);
	};
	g.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
		const key = meter.current.getStore();
		const response = realFetch(input, init);
		return key ? meter.holdUntil(key, response) : response;
	};
}
