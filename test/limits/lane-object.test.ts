/**
 * One lane object driven directly, as task objects drive it: the grant and the line stay exact
 * under hundreds of concurrent requests. The ids are made up and never granted by a push (a push
 * to an id without a task would be refused, and the slot given on); the lane is this test's own.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { LEASE_CHECK_MS, type SlotRequest } from "../../src/scheduling/Scheduler";
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

it("checks its holders only while a slot is wanted: no alarm while nobody waits, one as soon as someone does", async () => {
	const name = `type:test-${newId()}`;
	const lane = laneStub(name);
	const alarm = () => runInDurableObject(lane, (_instance, state) => state.storage.getAlarm());
	const req = (taskId: string): SlotRequest => ({ lane: name, taskId, rank: 0, limit: 2, watched: false });
	expect(await lane.acquire(req("a"))).toEqual({ granted: true });
	expect(await lane.acquire(req("b"))).toEqual({ granted: true });
	// Two holders and nobody waiting: nothing to check, no alarm, nothing billed.
	expect(await alarm()).toBeNull();
	expect(await lane.acquire(req("c"))).toEqual({ granted: false, position: 0 });
	const at = await alarm();
	expect(at).not.toBeNull();
	expect((at ?? 0) - Date.now()).toBeLessThanOrEqual(LEASE_CHECK_MS);
	for (const id of ["c", "a", "b"]) await lane.release(name, id);
	expect(await lane.describe()).toMatchObject({ holders: [], waiting: [] });
});

it("a check answered late, after its holder released the slot, leaves nothing to check: no alarm while nobody waits", async () => {
	const name = `type:test-${newId()}`;
	const lane = laneStub(name);
	const req = (taskId: string): SlotRequest => ({ lane: name, taskId, rank: 0, limit: 2, watched: false });
	expect(await lane.acquire(req("a"))).toEqual({ granted: true });
	expect(await lane.acquire(req("b"))).toEqual({ granted: true });
	await lane.release(name, "a");
	// What the lane does when a grant or check to "a" times out once "a" has gone (the call was slow, not lost).
	const checking = await runInDurableObject(lane, async (instance: any, state) => {
		instance.slots.unconfirmed("a", Date.now(), LEASE_CHECK_MS, 2000);
		await instance.ensureAlarm();
		return { unanswered: instance.slots.anyUnanswered as boolean, alarm: await state.storage.getAlarm() };
	});
	// One holder left and nobody waiting: no reason to ask anyone anything.
	expect(checking).toEqual({ unanswered: false, alarm: null });
	await lane.release(name, "b");
});
