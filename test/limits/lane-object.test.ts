/**
 * One lane object driven directly, as task objects drive it: the grant and the line stay exact
 * under hundreds of concurrent requests. The ids are made up and never granted by a push (a push
 * to an id without a task would be refused, and the slot given on); the lane is this test's own.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { SlotRequest } from "../../src/scheduling/Scheduler";
import { newId } from "../worker/support/ids";

function laneStub(name: string) {
	return env.SCHEDULER.getByName(name);
}

it("300 concurrent requests on a lane of 10: exactly 10 granted, the other 290 in line by rank, each its own position", async () => {
	const name = `type:test-${newId()}`;
	const lane = laneStub(name);
	const ids = Array.from({ length: 300 }, (_, i) => `t${i}`);
	// Ranks in reverse of arrival, so the line's order is the rank's, not the arrival's.
	const req = (i: number): SlotRequest => ({ lane: name, taskId: ids[i]!, rank: 1000 - i, limit: 10, watched: false });
	const answers = await Promise.all(ids.map((_, i) => lane.acquire(req(i))));
	const granted = answers.filter((a) => a.granted).length;
	expect(granted).toBe(10);
	const state = await lane.describe(2000);
	expect(state.holders).toHaveLength(10);
	expect(state.waiting).toHaveLength(290);
	const ranks = state.waiting.map((w) => w.rank);
	expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
	const positions = await Promise.all(state.waiting.map((w) => lane.position(w.taskId)));
	expect(positions).toEqual([...Array(290).keys()]);
	// Asking again changes nothing: a holder still holds, a waiting task keeps its place.
	expect(await lane.acquire({ ...req(Number(state.holders[0]!.slice(1))) })).toEqual({ granted: true });
	const again = await lane.acquire(req(Number(state.waiting[5]!.taskId.slice(1))));
	expect(again).toEqual({ granted: false, position: 5 });
	// Leaving: the line first (no slot frees, nothing is pushed), then the holders.
	await Promise.all(state.waiting.map((w) => lane.release(name, w.taskId)));
	await Promise.all(state.holders.map((h) => lane.release(name, h)));
	expect(await lane.describe()).toMatchObject({ holders: [], waiting: [] });
});
