import { webhookFilterFor, type TaskEvent } from "../task/events";
import type { TaskRecord } from "../task/model";
import { deliver, WEBHOOK_MAX_ATTEMPTS, webhookBackoffMs } from "./signing";

/** Webhook attempts kept on the task for inspection. */
const WEBHOOK_LOG_LIMIT = 50;
/** While an attempt is under way its retry is parked this far ahead, in case the object is evicted. */
const IN_FLIGHT_GRACE_MS = 15_000;

/** What the outbox needs from the task's object. */
export interface OutboxHost {
	record(): TaskRecord | null;
	/** A stored event by its sequence number. */
	event(seq: number): TaskEvent | null;
	secret(): string | undefined;
	retryBaseS: number;
	persist(): void;
	/** Points the alarm at the next deadline (the outbox's included). */
	schedule(): Promise<void>;
}

/**
 * A task's webhook deliveries: which events are owed, one attempt at a time, retries with
 * exponential backoff, each attempt recorded on the task. The pending list lives in the task's
 * record (so it survives eviction); the object's alarm calls `deliverDue`, and while a run holds
 * the alarm, `untilDue` wakes the handler for retries that fall due meanwhile.
 * A receiver that is down never delays the task, its waiters or any other task.
 */
export class WebhookOutbox {
	/** Events whose delivery is under way in this instance. */
	private readonly delivering = new Set<number>();
	/** Wakes `untilDue` when a retry gets a new due time. */
	private changed: (() => void) | null = null;

	constructor(private readonly host: OutboxHost) {}

	/** Owes the webhook for `event` if the task asked for that kind; true when it does. */
	add(r: TaskRecord, event: TaskEvent): boolean {
		const filter = webhookFilterFor(event);
		if (r.webhook === null || filter === null || !r.webhookEvents.includes(filter)) return false;
		r.webhookOutbox.push({ seq: event.seq, attempts: 0, nextAt: Date.now() });
		return true;
	}

	/** When the next delivery is due (Infinity: none pending). */
	nextAt(r: TaskRecord): number {
		return Math.min(Infinity, ...r.webhookOutbox.map((w) => w.nextAt));
	}

	async deliverDue(now: number): Promise<void> {
		const r = this.host.record();
		if (!r) return;
		const due = r.webhookOutbox.filter((w) => w.nextAt <= now && !this.delivering.has(w.seq));
		await Promise.all(due.map((w) => this.deliver(w.seq)));
	}

	/**
	 * Resolves when `work` settles, or when the next delivery falls due (or is rescheduled),
	 * whichever is first; false when nothing is pending and `work` was simply awaited.
	 */
	async untilDue(work: Promise<void>): Promise<boolean> {
		const r = this.host.record();
		const next = r ? this.nextAt(r) : Infinity;
		if (next === Infinity) {
			await work;
			return false;
		}
		let timer = 0;
		const due = new Promise<void>((resolve) => {
			timer = setTimeout(resolve, Math.max(0, next - Date.now()));
			this.changed = resolve;
		});
		try {
			await Promise.race([work, due]);
		} finally {
			clearTimeout(timer);
			this.changed = null;
		}
		return true;
	}

	/** One delivery attempt of the webhook for event `seq`; its outcome is recorded on the task. */
	async deliver(seq: number): Promise<void> {
		const r = this.host.record();
		const pending = r?.webhookOutbox.find((w) => w.seq === seq);
		if (!r || !r.webhook || !pending || this.delivering.has(seq)) return;
		const event = this.host.event(seq);
		const secret = this.host.secret();
		if (!event || !secret) {
			r.webhookOutbox = r.webhookOutbox.filter((w) => w.seq !== seq);
			this.host.persist();
			return;
		}
		this.delivering.add(seq);
		pending.attempts += 1;
		pending.nextAt = Date.now() + IN_FLIGHT_GRACE_MS;
		this.host.persist();
		await this.host.schedule();
		const outcome = await deliver(r.webhook, secret, event, { type: `task.${event.type}`, timestamp: event.at, data: event });
		this.delivering.delete(seq);
		if (this.host.record() !== r) return;
		r.webhookLog.push({ seq, event: event.type, attempt: pending.attempts, at: new Date().toISOString(), ...outcome });
		if (r.webhookLog.length > WEBHOOK_LOG_LIMIT) r.webhookLog.splice(0, r.webhookLog.length - WEBHOOK_LOG_LIMIT);
		if (outcome.ok || pending.attempts >= WEBHOOK_MAX_ATTEMPTS) {
			r.webhookOutbox = r.webhookOutbox.filter((w) => w.seq !== seq);
			if (!outcome.ok) console.error(`task ${r.id}: webhook for event ${seq} abandoned after ${pending.attempts} attempts`);
		} else {
			pending.nextAt = Date.now() + webhookBackoffMs(pending.attempts, this.host.retryBaseS);
		}
		this.host.persist();
		this.changed?.();
		await this.host.schedule();
	}
}
