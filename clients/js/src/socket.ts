import { abortReason } from "./http";
import type { TaskEvent } from "./types";

/** What the client needs of a WebSocket: the browser / Node / Workers `WebSocket` all fit. */
export interface WebSocketLike {
	readonly readyState: number;
	send(data: string): void;
	close(code?: number, reason?: string): void;
	addEventListener(type: "open" | "close" | "error", listener: (event: { code?: number; reason?: string }) => void): void;
	addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
}

/**
 * Opens a WebSocket to `url` (ws: or wss:). Resolves once it is usable; rejects if it closes
 * or fails first, or the signal aborts. The default uses the platform's WebSocket.
 */
export type ConnectSocket = (url: string, signal: AbortSignal) => Promise<WebSocketLike>;

/** A constructor like the standard `WebSocket`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The socket failed before it opened: the caller asks over HTTP why (404? 401?) or tries again. */
export class SocketOpenError extends Error {}

/** Connects with a WebSocket constructor (browsers, Node ≥ 22, Deno, Bun). */
export function constructorConnector(WS: WebSocketConstructor): ConnectSocket {
	return (url, signal) =>
		new Promise((resolve, reject) => {
			if (signal.aborted) return reject(abortReason(signal));
			const ws = new WS(url);
			const onAbort = () => {
				ws.close(1000, "aborted");
				reject(abortReason(signal));
			};
			signal.addEventListener("abort", onAbort, { once: true });
			ws.addEventListener("open", () => {
				signal.removeEventListener("abort", onAbort);
				resolve(ws);
			});
			const fail = () => {
				signal.removeEventListener("abort", onAbort);
				reject(new SocketOpenError(`WebSocket to ${url} closed before it opened`));
			};
			ws.addEventListener("error", fail);
			ws.addEventListener("close", fail);
		});
}

interface UpgradedResponse {
	status: number;
	webSocket?: (WebSocketLike & { accept(): void }) | null;
	text(): Promise<string>;
}

/**
 * Connects by `fetch` with `Upgrade: websocket`, as Cloudflare Workers do (it also works through
 * a service binding's fetch). The answer's socket is accepted here; a non-101 answer is an error.
 */
export function fetchUpgradeConnector(fetchFn: typeof fetch, headers: () => Record<string, string>): ConnectSocket {
	return async (url, signal) => {
		const http = url.replace(/^ws/, "http");
		const res = (await fetchFn(http, { headers: { ...headers(), upgrade: "websocket" }, signal })) as unknown as UpgradedResponse;
		const ws = res.webSocket;
		if (!ws) {
			await res.text().catch(() => "");
			throw new SocketOpenError(`GET ${http} answered ${res.status} instead of a WebSocket`);
		}
		ws.accept();
		return ws;
	};
}

/** The platform's way to open a WebSocket, or null when it has none (Node 20 without a flag). */
export function platformConnector(fetchFn: typeof fetch, headers: () => Record<string, string>): ConnectSocket | null {
	const g = globalThis as { WebSocketPair?: unknown; WebSocket?: WebSocketConstructor };
	// Workers: an outgoing `new WebSocket()` cannot reach a service binding or send headers; fetch can.
	if (g.WebSocketPair !== undefined) return fetchUpgradeConnector(fetchFn, headers);
	if (typeof g.WebSocket === "function") return constructorConnector(g.WebSocket);
	return null;
}

/** How often an idle subscription pings; a socket that answers nothing for two rounds is dropped and resumed. */
const HEARTBEAT_MS = 30_000;

/**
 * The events of one WebSocket connection, in order, until the server closes it (or it drops).
 * Closing the socket is this function's job however the iteration ends.
 */
export async function* socketEvents(connect: ConnectSocket, url: string, signal: AbortSignal): AsyncGenerator<TaskEvent> {
	const ws = await connect(url, signal);
	const queue: TaskEvent[] = [];
	let closed = false;
	let heard = true;
	let wake: (() => void) | null = null;
	const notify = () => {
		wake?.();
		wake = null;
	};
	ws.addEventListener("message", (event) => {
		heard = true;
		if (typeof event.data !== "string") return;
		let frame: unknown;
		try {
			frame = JSON.parse(event.data);
		} catch {
			return;
		}
		const candidate = frame as Partial<TaskEvent>;
		// Events carry a task id and a sequence; pongs and error frames do not.
		if (typeof candidate.seq === "number" && typeof candidate.task_id === "string") {
			queue.push(candidate as TaskEvent);
			notify();
		}
	});
	const onEnd = () => {
		closed = true;
		notify();
	};
	ws.addEventListener("close", onEnd);
	ws.addEventListener("error", onEnd);
	signal.addEventListener("abort", onEnd, { once: true });
	const heartbeat = setInterval(() => {
		if (!heard) {
			ws.close(4000, "no answer to ping");
			onEnd();
			return;
		}
		heard = false;
		try {
			ws.send('{"type":"ping"}');
		} catch {
			onEnd();
		}
	}, HEARTBEAT_MS);
	try {
		for (;;) {
			const event = queue.shift();
			if (event) {
				yield event;
				continue;
			}
			if (signal.aborted) throw abortReason(signal);
			if (closed) return;
			await new Promise<void>((resolve) => (wake = resolve));
		}
	} finally {
		clearInterval(heartbeat);
		signal.removeEventListener("abort", onEnd);
		try {
			ws.close(1000, "done");
		} catch {
			/* already closed */
		}
	}
}
