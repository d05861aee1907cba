/**
 * The lane benchmark's worker (see wrangler.toml beside it): the real Scheduler, and `Holder`, a
 * stand-in for a task's object that asks for a slot the way TaskSlot does (acquire; if it must
 * wait, the lane pushes the slot to `slotOffered`), holds it for 0 ms and releases it.
 */
import { DurableObject } from "cloudflare:workers";
import { Scheduler } from "../../src/scheduling/Scheduler.ts";

export { Scheduler };

interface LaneEnv {
	SCHEDULER: DurableObjectNamespace<Scheduler>;
	TASKS: DurableObjectNamespace<Holder>;
}

export class Holder extends DurableObject<LaneEnv> {
	private asking = false;
	private offeredEarly = false;
	private wake: (() => void) | null = null;

	/** Asks `lane` for a slot as task `taskId`, waits for it if it must, then gives it back at once. */
	async ask(lane: string, taskId: string, limit: number): Promise<void> {
		const stub = this.env.SCHEDULER.getByName(lane);
		this.asking = true;
		this.offeredEarly = false;
		try {
			const answer = await stub.acquire({ lane, taskId, rank: Date.now(), limit, watched: false });
			if (!answer.granted && !this.offeredEarly) await new Promise<void>((resolve) => (this.wake = resolve));
			await stub.release(lane, taskId);
		} finally {
			this.asking = false;
		}
	}

	/** The lane pushes a slot (or checks one): taken while asking. */
	async slotOffered(_lane: string): Promise<boolean> {
		const wake = this.wake;
		this.wake = null;
		if (wake) wake();
		else if (this.asking) this.offeredEarly = true;
		return wake !== null || this.asking;
	}

	async queuePositionChanged(): Promise<boolean> {
		return false;
	}
}

export default {
	async fetch(request: Request, env: LaneEnv): Promise<Response> {
		const url = new URL(request.url);
		if (url.pathname === "/health") return Response.json({ status: "ok" });
		if (url.pathname !== "/run" || request.method !== "POST") return new Response("not found", { status: 404 });
		const { n, conc, limit } = (await request.json()) as { n: number; conc: number; limit: number };
		const lane = `type:bench-${crypto.randomUUID()}`;
		let issued = 0;
		const t0 = performance.now();
		await Promise.all(
			Array.from({ length: conc }, async (_, h) => {
				const taskId = `${lane}/holder-${h}`;
				const holder = env.TASKS.getByName(taskId);
				while (issued < n) {
					issued += 1;
					await holder.ask(lane, taskId, limit);
				}
			}),
		);
		const state = await env.SCHEDULER.getByName(lane).describe(10);
		return Response.json({
			elapsedMs: performance.now() - t0,
			grants: issued,
			left: { holders: state.holders.length, waiting: state.waiting.length },
		});
	},
};
