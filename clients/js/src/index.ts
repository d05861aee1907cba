/**
 * `edgetask/client`: a typed client of the edgetask API for Node ≥ 20, browsers and Workers,
 * with no dependencies.
 *
 * @example
 * import { createClient } from "edgetask/client";
 * const client = createClient({ baseUrl: "http://127.0.0.1:8787" });
 * const { slept_ms } = await client.run("sleep", { ms: 1500 }, { onProgress: (p) => console.log(`${p.percent}%`) });
 */
export { createClient } from "./client";
export type { Client, ClientOptions, RunOptions, SubmitOptions, Transport, TypedTask, WaitOptions } from "./client";
export { EdgetaskError, HttpError, RateLimitedError, TaskCanceledError, TaskFailedError, TaskTimeoutError } from "./errors";
export type { TaskLocation, TaskRef } from "./http";
export type { ConnectSocket, WebSocketConstructor, WebSocketLike } from "./socket";
export * from "./types";
