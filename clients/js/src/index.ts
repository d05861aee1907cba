/**
 * `edgetask/client`: a typed client of the edgetask API for Node ≥ 20, browsers and Workers,
 * with no dependencies.
 *
 * @example
 * import { createClient } from "edgetask/client";
 * const client = createClient({ baseUrl: "http://127.0.0.1:8787" });
 * const { slept_ms } = await client.run("sleep", { ms: 1500 }, { onProgress: (p) => console.log(`${p.percent}%`) });
 */
import type { TaskTypes } from "../../../src/processors";
import { createClient as createUntypedClient, type Client, type ClientOptions } from "./client";
import type { TaskTypeMap } from "./types";

/** The server's own task types (a type-only import: nothing of the server is bundled). */
export type ServerTaskTypes = TaskTypes;

/**
 * Creates a client of an edgetask server. Input and output types of the server's built-in
 * processors are known; pass your own map as `M` for task types served elsewhere (other types
 * take and return `unknown`).
 */
export function createClient<M extends TaskTypeMap = ServerTaskTypes>(options: ClientOptions): Client<M> {
	return createUntypedClient<M>(options);
}
export type { Client, ClientOptions, RunOptions, SubmitOptions, Transport, TypedTask, WaitOptions } from "./client";
export { EdgetaskError, HttpError, RateLimitedError, TaskCanceledError, TaskFailedError, TaskTimeoutError } from "./errors";
export type { TaskLocation, TaskRef } from "./http";
export type { ConnectSocket, WebSocketConstructor, WebSocketLike } from "./socket";
export { createWorker, PermanentError } from "./worker";
export type { Lease, PullWorker, TaskHandler, WorkContext, WorkerOptions, WorkerStats } from "./worker";
export * from "./types";
