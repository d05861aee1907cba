import type { Priority } from "../task/model";

/**
 * The priority rule: a bounded head start. A task's place among the tasks waiting for the same
 * lane is its rank, the time it became ready minus its priority's offset, lowest first:
 *   high   = ready − PRIORITY_OFFSET_S
 *   normal = ready
 *   low    = ready + PRIORITY_OFFSET_S
 * (ties by arrival at the lane). So `high` overtakes `normal` tasks that became ready up to
 * PRIORITY_OFFSET_S earlier and `low` ones up to twice that; within a priority it is first come,
 * first served; and nothing starves: a `low` task is overtaken only by tasks that became ready
 * less than 2 × PRIORITY_OFFSET_S after it.
 *
 * "Ready" is `run_at`: the submit time, or for a `delay_s` task the end of its delay (else a
 * delayed task would jump everything submitted during its delay). A retried task keeps its rank.
 */
export function rankOf(readyAt: number, priority: Priority, offsetS: number): number {
	const offsetMs = offsetS * 1000;
	return priority === "high" ? readyAt - offsetMs : priority === "low" ? readyAt + offsetMs : readyAt;
}
