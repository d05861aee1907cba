/**
 * The client inside the Workers runtime (workerd), talking to the worker through its own fetch
 * handler: WebSockets are opened by `fetch` + `Upgrade: websocket`, as a Worker must. Also
 * checks at compile time that the client's wire types match the server's.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
	createClient,
	HttpError,
	TaskFailedError,
	type Client,
	type ServerTaskTypes,
	type Task as ClientTask,
	type TaskEvent as ClientEvent,
	type TaskPage as ClientPage,
	type TaskTypeInfo as ClientTypeInfo,
} from "../../clients/js/src/index";
import type { z } from "zod";
import type { TaskPage as WirePage } from "../../src/api/routes/listing";
import type { TypeList as WireTypes } from "../../src/api/routes/types";
import { eventually } from "../shared/waits";
import type { TaskEvent as ServerEvent } from "../../src/task/events";
import type { Task as ServerTask } from "../../src/task/model";
import { ORIGIN } from "./support/api";

function workerClient(options: { transport?: "auto" | "sse" | "poll" } = {}) {
	let sockets = 0;
	const client = createClient({
		baseUrl: ORIGIN,
		...options,
		fetch: (input, init) => {
			const request = new Request(input, init);
			if (request.headers.get("upgrade") === "websocket") sockets++;
			return exports.default.fetch(request);
		},
	});
	return { client, sockets: () => sockets };
}

describe("the client in workerd", () => {
	it("runs a task over a WebSocket opened by fetch, with progress", async () => {
		const { client, sockets } = workerClient();
		const progress: number[] = [];
		const events: ClientEvent[] = [];
		const output = await client.run("sleep", { ms: 1200 }, { onProgress: (p) => progress.push(p.percent), onEvent: (e) => events.push(e) });
		expect(output).toEqual({ slept_ms: 1200 });
		expect(sockets()).toBe(1);
		expect(progress.at(-1)).toBe(100);
		expect(progress.length).toBeGreaterThanOrEqual(2);
		expect(events[0]?.type).toBe("snapshot");
		expect(events.at(-1)?.type).toBe("succeeded");
	});

	it("long-polls and streams SSE when told to", async () => {
		const poll = workerClient({ transport: "poll" });
		expect(await poll.client.run("echo", { hello: "workerd" })).toEqual({ hello: "workerd" });
		expect(poll.sockets()).toBe(0);
		const sse = workerClient({ transport: "sse" });
		const types: string[] = [];
		expect(await sse.client.run("sleep", { ms: 300 }, { onEvent: (e) => types.push(e.type) })).toEqual({ slept_ms: 300 });
		expect(types.at(-1)).toBe("succeeded");
		expect(sse.sockets()).toBe(0);
	});

	it("reports failures and refusals with its error classes", async () => {
		const { client } = workerClient();
		await expect(client.run("fail", { message: "bad", permanent: true })).rejects.toBeInstanceOf(TaskFailedError);
		const refused = await client.submit("sleep", { ms: -1 }).catch((e: unknown) => e);
		expect(refused).toBeInstanceOf(HttpError);
		expect((refused as HttpError).body.error.code).toBe("invalid_input");
	});
});

describe("listing and types through the client", () => {
	it("list() pages newest first with status and type filters; a bad query is an HttpError", async () => {
		const { client } = workerClient();
		const mine: string[] = [];
		for (let i = 0; i < 3; i++) mine.push((await client.submit("echo", { i }, { wait: 10 })).id);
		const canceled = await client.submit("sleep", { ms: 30_000 });
		await client.cancel(canceled);
		// Rows reach the listing off the request path: wait for all four.
		await eventually(
			async () => {
				const ids = (await client.list({ limit: 500 })).tasks.map((t) => t.id);
				return [...mine, canceled.id].every((id) => ids.includes(id)) || undefined;
			},
			"the tasks listed",
			15_000,
			100,
		);
		// Pages of one, walked by cursor, give the echo tasks newest first, each once.
		const walked: string[] = [];
		let cursor: string | undefined;
		for (let page = 0; page < 50 && walked.length < 500; page++) {
			const next = await client.list({ type: "echo", limit: 1, cursor });
			expect(next.tasks.length).toBeLessThanOrEqual(1);
			walked.push(...next.tasks.map((t) => t.id));
			if (mine.every((id) => walked.includes(id)) || next.next_cursor === null) break;
			cursor = next.next_cursor;
		}
		expect(walked.filter((id) => mine.includes(id))).toEqual([...mine].reverse());
		expect(new Set(walked).size).toBe(walked.length);
		const byStatus = await client.list({ status: ["canceled"], limit: 500 });
		expect(byStatus.tasks.every((t) => t.status === "canceled")).toBe(true);
		expect(byStatus.tasks.map((t) => t.id)).toContain(canceled.id);
		expect(byStatus.tasks.map((t) => t.id)).not.toContain(mine[0]);
		const refused = await client.list({ limit: 501 }).catch((e: unknown) => e);
		expect(refused).toBeInstanceOf(HttpError);
		expect((refused as HttpError).body.error.code).toBe("invalid_query");
	});

	it("types() lists the types offered with their input schemas", async () => {
		const { client } = workerClient();
		const types = await client.types();
		const sleep = types.find((t) => t.type === "sleep");
		expect(sleep?.runs).toBe("worker");
		expect(JSON.stringify(sleep?.input_schema)).toContain('"ms"');
		const checksum = types.find((t) => t.type === "checksum")?.input_schema as { required?: string[] } | undefined;
		expect(checksum?.required).toContain("text");
	});

	it("the client's TaskPage and TaskTypeInfo are what the routes answer", () => {
		expectTypeOf<z.output<typeof WirePage>>().toExtend<ClientPage>();
		expectTypeOf<keyof z.output<typeof WirePage>["tasks"][number]>().toEqualTypeOf<keyof ClientPage["tasks"][number]>();
		expectTypeOf<z.output<typeof WireTypes>["types"][number]>().toEqualTypeOf<ClientTypeInfo>();
	});
});

describe("types", () => {
	it("inputs and outputs of the server's processors flow to callers; other types are unknown", () => {
		// Checked by the compiler (npm run check), never called: it would send requests.
		const compileOnly = (client: Client<ServerTaskTypes>) => {
			expectTypeOf(client.run("sleep", { ms: 10 })).resolves.toEqualTypeOf<{ slept_ms: number }>();
			expectTypeOf(client.run("sleep", null)).resolves.toEqualTypeOf<{ slept_ms: number }>();
			// @ts-expect-error sleep's ms is a number
			void client.run("sleep", { ms: "soon" });
			expectTypeOf(client.submit("sleep", {})).resolves.toHaveProperty("output").toEqualTypeOf<{ slept_ms: number } | null>();
			expectTypeOf(client.run("resize-image", { width: 10 })).resolves.toBeUnknown();
		};
		expect(compileOnly).toBeTypeOf("function");
	});

	it("the client's Task and TaskEvent are the server's", () => {
		expectTypeOf<Omit<ServerTask, "input" | "output">>().toEqualTypeOf<Omit<ClientTask, "urls" | "input" | "output">>();
		// Every field the server sends is one the client knows, with a type the client accepts.
		expectTypeOf<ServerTask>().toExtend<Omit<ClientTask<unknown, unknown>, "urls">>();
		expectTypeOf<keyof ServerTask>().toEqualTypeOf<Exclude<keyof ClientTask, "urls">>();
		expectTypeOf<ServerEvent["type"]>().toEqualTypeOf<ClientEvent["type"]>();
		expectTypeOf<keyof ServerEvent>().toEqualTypeOf<keyof ClientEvent>();
	});
});
