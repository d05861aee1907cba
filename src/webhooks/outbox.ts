import { webhookFilterFor, type TaskEvent } from "../task/events";
import type { TaskRecord, WebhookAttempt, WebhookGiveUp, WebhookView } from "../task/model";
import { deliver, WEBHOOK_MAX_ATTEMPTS, webhookBackoffMs } from "./signing";

/** Webhook attempts (and, apart, give-ups) kept on the task for inspection. */
const WEBHOOK_LOG_LIMIT = 50;
/** While an attempt is under way its retry is parked this far ahead, in case the object is evicted. */
const IN_FLIGHT_GRACE_MS = 15_000;

/** One delivery owed: the event's seq, the attempts made, when to try next. */
interface Owed {
	seq: number;
	attempts: number;
	nextAt: number;
}

/** Everything the outbox stores, in one row of its own (never in the task's record). */
export interface WebhookState {
	owed: Owed[];
	log: WebhookAttempt[];
	givenUp: WebhookGiveUp[];
}

/** What the outbox needs from the task's object. */
export interface OutboxHost {
	record(): TaskRecord | null;
	/** A stored event by its sequence number. */
	event(seq: number): TaskEvent | null;
	secret(): string | undefined;
	retryBaseS: number;
	/** The delivery of event `seq` is over (delivered or given up): the outbox no longer needs that event. */
	settled(seq: number): void;
	/** Points the alarm at the next deadline (the outbox's included). */
	schedule(): Promise<void>;
}

/**
 * A task's webhook deliveries: which events are owed, one attempt at a time, retries with
 * exponential backoff, each attempt and each give-up recorded on the task. Its state lives in a
 * row of its own, made with the first delivery owed, so that a delivery never rewrites the task's
 * record (input and output included) and a task without a webhook stores nothing for it. The
 * object's alarm calls `deliverDue`, but never the invocation that holds a run: deliveries that
 * fall due then are made by a call of the object to itself (`whileRunning`; see TaskCoordinator).
 * A receiver that is down never delays the task, its waiters or any other task.
 */
export class WebhookOutbox {
	/** Loaded on first use: a task without a webhook never reads or writes anything here. */
	private loaded: WebhookState | null = null;
	/** Events whose delivery is under way in this instance. */
	private readonly delivering = new Set<number>();
	/** Re-arms the watch of `whileRunRunning` when the due times change. */
	private changed: (() => void) | null = null;

	constructor(
		private readonly sql: SqlStorage,
		private readonly host: OutboxHost,
	) {}

	private get state(): WebhookState {
		this.loaded ??= this.load() ?? { owed: [], log: [], givenUp: [] };
		return this.loaded;
	}

	/** True when the task has no webhook: then nothing is owed and nothing is read. */
	private get idle(): boolean {
		return !this.host.record()?.webhook;
	}

	/** Takes over the bookkeeping of a record stored before the outbox had its own row. */
	adoptLegacy(owed: Owed[] | undefined, log: WebhookAttempt[] | undefined): void {
		if (this.state.owed.length > 0 || this.state.log.length > 0 || (!owed?.length && !log?.length)) return;
		this.save({ owed: owed ?? [], log: log ?? [], givenUp: [] });
	}

	/** The task's webhook as clients see it: deliveries owed, the latest attempts, the give-ups. */
	view(): WebhookView {
		if (this.idle) return { pending: 0, deliveries: [], given_up: [] };
		return { pending: this.state.owed.length, deliveries: this.state.log, given_up: this.state.givenUp };
	}

	/** Whether the delivery of event `seq` is still owed (its event must be kept). */
	owes(seq: number): boolean {
		return !this.idle && this.state.owed.some((w) => w.seq === seq);
	}

	/** Whether any delivery is owed: the task is not deleted at its TTL until none is. */
	owesAny(): boolean {
		return !this.idle && this.state.owed.length > 0;
	}

	/** When the next delivery is due (Infinity: none owed). */
	nextAt(): number {
		return this.idle ? Infinity : Math.min(Infinity, ...this.state.owed.map((w) => w.nextAt));
	}

	/**
	 * Owes the webhook for `event` if the task asked for that kind; true when it does. Writes its
	 * row before changing anything in memory, so a commit that fails leaves the outbox as it was.
	 */
	add(r: TaskRecord, event: TaskEvent): boolean {
		const filter = webhookFilterFor(event);
		if (r.webhook === null || filter === null || !r.webhookEvents.includes(filter)) return false;
		this.save({ ...this.state, owed: [...this.state.owed, { seq: event.seq, attempts: 0, nextAt: Date.now() }] });
		return true;
	}

	/**
	 * While a run holds the alarm (which cannot fire again meanwhile), calls `onDue` each time a
	 * delivery falls due, so that it is made on time by an invocation of its own; stopped by the
	 * returned function when the run ends.
	 */
	whileRunning(onDue: () => void): () => void {
		let timer = 0;
		const arm = () => {
			clearTimeout(timer);
			const next = this.nextAt();
			if (next !== Infinity) timer = setTimeout(onDue, Math.max(0, next - Date.now()));
		};
		this.changed = arm;
		arm();
		return () => {
			clearTimeout(timer);
			if (this.changed === arm) this.changed = null;
		};
	}

	async deliverDue(now: number): Promise<void> {
		if (this.idle) return;
		const due = this.state.owed.filter((w) => w.nextAt <= now && !this.delivering.has(w.seq));
		await Promise.all(due.map((w) => this.deliver(w.seq)));
	}

	/** One delivery attempt of the webhook for event `seq`; its outcome is recorded on the task. */
	async deliver(seq: number): Promise<void> {
		const r = this.host.record();
		const owed = this.state.owed.find((w) => w.seq === seq);
		if (!r || !r.webhook || !owed || this.delivering.has(seq)) return;
		const event = this.host.event(seq);
		const secret = this.host.secret();
		if (!event || !secret) {
			this.giveUp(owed, event?.type ?? "unknown", event ? "WEBHOOK_SECRET is not set" : "the event is no longer stored");
			await this.host.schedule();
			return;
		}
		this.delivering.add(seq);
		const attempt = owed.attempts + 1;
		this.update(seq, { attempts: attempt, nextAt: Date.now() + IN_FLIGHT_GRACE_MS });
		await this.host.schedule();
		const outcome = await deliver(r.webhook, secret, event, { type: `task.${event.type}`, timestamp: event.at, data: event });
		this.delivering.delete(seq);
		// The task expired meanwhile (its storage is gone), or this instance is no longer its.
		if (this.host.record() !== r || !this.owes(seq)) return;
		const entry: WebhookAttempt = { seq, event: event.type, attempt, at: new Date().toISOString(), ...outcome };
		const log = [...this.state.log, entry].slice(-WEBHOOK_LOG_LIMIT);
		if (outcome.ok) {
			this.save({ ...this.state, owed: this.state.owed.filter((w) => w.seq !== seq), log });
			this.host.settled(seq);
		} else if (attempt >= WEBHOOK_MAX_ATTEMPTS) {
			this.loaded = { ...this.state, log };
			this.giveUp({ seq, attempts: attempt, nextAt: 0 }, event.type, `${attempt} attempts failed; the last: ${outcome.error ?? "?"}`);
		} else {
			this.save({ ...this.state, log });
			this.update(seq, { nextAt: Date.now() + webhookBackoffMs(attempt, this.host.retryBaseS) });
		}
		await this.host.schedule();
	}

	/** The task expired and its storage is gone: nothing is owed or kept any more. */
	cleared(): void {
		this.loaded = null;
		this.delivering.clear();
	}

	/** Stops trying to deliver event `seq` and records why on the task (and in the log). */
	private giveUp(owed: Owed, event: string, reason: string): void {
		const r = this.host.record();
		console.error(`task ${r?.id ?? "?"}: webhook for event ${owed.seq} given up: ${reason}`);
		const given: WebhookGiveUp = { seq: owed.seq, event, attempts: owed.attempts, at: new Date().toISOString(), reason };
		this.save({
			owed: this.state.owed.filter((w) => w.seq !== owed.seq),
			log: this.state.log,
			givenUp: [...this.state.givenUp, given].slice(-WEBHOOK_LOG_LIMIT),
		});
		this.host.settled(owed.seq);
	}

	private update(seq: number, fields: Partial<Owed>): void {
		this.save({ ...this.state, owed: this.state.owed.map((w) => (w.seq === seq ? { ...w, ...fields } : w)) });
	}

	/** Writes the state's row, then takes it as the state (a write that throws changes nothing). */
	private save(next: WebhookState): void {
		this.sql.exec("CREATE TABLE IF NOT EXISTS webhook (id INTEGER PRIMARY KEY, state TEXT NOT NULL)");
		this.sql.exec("INSERT OR REPLACE INTO webhook (id, state) VALUES (0, ?)", JSON.stringify(next));
		this.loaded = next;
		this.changed?.();
	}

	private load(): WebhookState | null {
		const exists = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook'").toArray().length > 0;
		if (!exists) return null;
		const row = this.sql.exec<{ state: string }>("SELECT state FROM webhook WHERE id = 0").toArray()[0];
		return row ? (JSON.parse(row.state) as WebhookState) : null;
	}
}
