import { settings } from "./config";
import { statsShard, type StatusCounts } from "./StatsShard";

/** Sums the health shards: one small read per shard, never one object per task. */
export async function healthReport(env: Env) {
	const { healthShards } = settings(env);
	const shards = await Promise.all(Array.from({ length: healthShards }, (_, i) => statsShard(env, i).counts()));
	const total: StatusCounts = { queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0, timed_out: 0 };
	for (const counts of shards) {
		for (const status of Object.keys(total) as (keyof StatusCounts)[]) total[status] += counts[status];
	}
	return {
		status: "ok" as const,
		/** Tasks accepted and not yet started (the seed's queue size). */
		queue_size: total.queued,
		running: total.running,
		/** Finished tasks whose results are kept until their TTL. */
		results_pending: total.succeeded + total.failed + total.canceled + total.timed_out,
		by_status: total,
		shards: healthShards,
	};
}
