import { settings } from "../config";
import { TERMINAL_STATUSES, zeroCounts } from "../task/model";
import { statsShard, type StatusCounts } from "./StatsShard";

/** Sums the health shards: one small read per shard, never one object per task. */
export async function healthReport(env: Env) {
	const { healthShards } = settings(env);
	const shards = await Promise.all(Array.from({ length: healthShards }, (_, i) => statsShard(env, i).counts()));
	const total: StatusCounts = zeroCounts();
	for (const counts of shards) {
		for (const status of Object.keys(total) as (keyof StatusCounts)[]) total[status] += counts[status];
	}
	return {
		status: "ok" as const,
		/** Tasks accepted and not yet started (the seed's queue size). */
		queue_size: total.queued,
		running: total.running,
		/** Finished tasks whose results are kept until their TTL. */
		results_pending: TERMINAL_STATUSES.reduce((sum, status) => sum + total[status], 0),
		by_status: total,
		shards: healthShards,
	};
}
