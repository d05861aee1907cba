/**
 * A multi-task socket's hub leaves nothing behind: its storage is created with its first
 * subscription and deleted when its socket closes, or by its sweep alarm when no close ever came.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../shared/waits";
import { cancelTask, pollTask, submitTask, warmUp } from "./support/api";
import { isEvent } from "./support/events";
import { newId } from "./support/ids";
import { followersOf, hubStorage, runInObject, taskStub } from "./support/objects";
import { openSocket } from "./support/socket";

beforeAll(warmUp);

describe("hub storage", () => {
	it("200 connect / subscribe / close cycles leave no hub storage and no follower behind", { timeout: 240_000 }, async () => {
		const id = newId("cleanup");
		await submitTask({ id, type: "hang", input: {}, timeout_s: 240 });
		await pollTask(id, (t) => t.status === "running", "the task to run");

		const hubs = new Set<string>();
		for (let i = 0; i < 200; i++) {
			const socket = await openSocket("/v1/ws");
			socket.send({ type: "subscribe", ids: [id] });
			await socket.waitFor(isEvent, "the snapshot");
			// Each connection has its own hub; the task lists it as a follower.
			const followers = await followersOf(id);
			const fresh = followers.filter((hub) => !hubs.has(hub));
			expect(fresh, `round ${i}`).toHaveLength(1);
			hubs.add(fresh[0]!);
			// While the socket is open, the hub holds its subscription.
			if (i === 0) expect((await hubStorage(fresh[0]!)).tables.length).toBeGreaterThan(0);
			socket.shut();
		}
		expect(hubs.size).toBe(200);
		await eventually(async () => ((await followersOf(id)).length === 0 ? true : undefined), "every hub to unfollow", 30_000);
		const left: string[] = [];
		for (const hub of hubs) {
			const { tables, alarm } = await hubStorage(hub);
			if (tables.length > 0 || alarm !== null) left.push(`${hub}: ${JSON.stringify({ tables, alarm })}`);
		}
		expect(left).toEqual([]);
		await cancelTask(id);
	});

	it("a hub that lost its socket without a close event is swept by its alarm: storage deleted, task unfollowed", async () => {
		const id = newId("cleanup");
		await submitTask({ id, type: "hang", input: {}, timeout_s: 60 });
		await pollTask(id, (t) => t.status === "running", "the task to run");
		// A hub that followed the task and whose socket is gone with no close delivered: built
		// directly, as no client can make the runtime drop a close event.
		const hub = newId("hub");
		const stub = env.HUBS.getByName(hub);
		// (Typed loosely: the RPC type of follow() is too deep for the checker here.)
		const snapshot = await (taskStub(id) as unknown as { follow(hub: string): Promise<unknown> }).follow(hub);
		expect(typeof snapshot).toBe("object");
		await runInObject(stub, (instance) => {
			instance.ensureStorage();
			instance.ctx.storage.kv.put("hub", hub);
			instance.sql.exec("INSERT INTO follows (task_id, seq) VALUES (?, ?)", id, (snapshot as { seq: number }).seq);
		});
		expect(await followersOf(id)).toEqual([hub]);
		const before = await hubStorage(hub);
		expect(before.tables).toContain("follows");
		expect(before.alarm).not.toBeNull();

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await hubStorage(hub)).toEqual({ tables: [], alarm: null });
		expect(await followersOf(id)).toEqual([]);
		await cancelTask(id);
	});

	it("the sweep leaves a hub with an open socket alone and looks again later", async () => {
		const id = newId("cleanup");
		await submitTask({ id, type: "hang", input: {}, timeout_s: 60 });
		const socket = await openSocket("/v1/ws");
		socket.send({ type: "subscribe", ids: [id] });
		await socket.waitFor(isEvent, "the snapshot");
		const [hub] = await followersOf(id);
		expect(await runDurableObjectAlarm(env.HUBS.getByName(hub!))).toBe(true);
		const after = await hubStorage(hub!);
		expect(after.tables).toContain("follows");
		expect(after.alarm).toBeGreaterThan(Date.now());
		await cancelTask(id);
		await socket.waitFor((f) => isEvent(f) && f.type === "canceled", "the end");
		socket.shut();
		await eventually(
			async () => ((await hubStorage(hub!)).tables.length === 0 ? true : undefined),
			"the hub to delete its storage",
			10_000,
		);
	});
});
