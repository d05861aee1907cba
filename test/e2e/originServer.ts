/**
 * A real HTTP origin for the `http` task type: a Node server on a free loopback port whose
 * behaviour per path is set by the test, and which records what it saw: every request (headers,
 * body, when it came, when and how its connection ended) and how many were in flight at once,
 * counted by the origin itself.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
	path: string;
	headers: IncomingMessage["headers"];
	body: unknown;
	/** Date.now() when the request's body had arrived. */
	at: number;
	/** Date.now() when its connection ended (answered, or closed by the caller), null while open. */
	endedAt: number | null;
	/** True when the caller closed the connection before the answer was complete. */
	abortedByCaller: boolean;
}

export type Handler = (req: SeenRequest, res: ServerResponse) => void | Promise<void>;

export interface OriginServer {
	url: string;
	port: number;
	/** Requests in arrival order. */
	seen: SeenRequest[];
	/** Requests in flight now, and the most ever in flight at once. */
	inFlight(): number;
	maxInFlight(): number;
	resetMax(): void;
	/** Sets what a path does (exact path, query included). Unset paths answer 404. */
	on(path: string, handler: Handler): void;
	requestsTo(path: string): SeenRequest[];
	stop(): Promise<void>;
}

export async function startOrigin(): Promise<OriginServer> {
	const handlers = new Map<string, Handler>();
	const seen: SeenRequest[] = [];
	let inFlight = 0;
	let maxInFlight = 0;
	const server = createServer((req, res) => {
		inFlight += 1;
		maxInFlight = Math.max(maxInFlight, inFlight);
		const chunks: Buffer[] = [];
		const record: SeenRequest = { path: req.url ?? "/", headers: req.headers, body: null, at: 0, endedAt: null, abortedByCaller: false };
		res.on("close", () => {
			inFlight -= 1;
			record.endedAt = Date.now();
			record.abortedByCaller = !res.writableFinished;
		});
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const text = Buffer.concat(chunks).toString("utf8");
			record.at = Date.now();
			try {
				record.body = text ? JSON.parse(text) : null;
			} catch {
				record.body = text;
			}
			seen.push(record);
			const handler = handlers.get(record.path);
			if (!handler) {
				res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ detail: "Not Found" }));
				return;
			}
			void Promise.resolve(handler(record, res)).catch((e: unknown) => {
				if (!res.headersSent) res.writeHead(500);
				res.end(String(e));
			});
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	return {
		url: `http://127.0.0.1:${port}`,
		port,
		seen,
		inFlight: () => inFlight,
		maxInFlight: () => maxInFlight,
		resetMax: () => void (maxInFlight = inFlight),
		on: (path, handler) => void handlers.set(path, handler),
		requestsTo: (path) => seen.filter((r) => r.path === path),
		stop: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

/** Answers JSON with `status`. */
export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
	res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

/** Writes `parts` one by one, `gapMs` apart, then ends the answer (unless the caller went away). */
export async function trickle(res: ServerResponse, contentType: string, parts: string[], gapMs: number): Promise<void> {
	res.writeHead(200, { "content-type": contentType, "cache-control": "no-cache" });
	for (const part of parts) {
		if (res.destroyed) return;
		res.write(part);
		await new Promise((r) => setTimeout(r, gapMs));
	}
	res.end();
}
