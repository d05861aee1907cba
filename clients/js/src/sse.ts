import type { Http } from "./http";
import type { TaskEvent } from "./types";

/**
 * The events of one Server-Sent Events response (`GET /v1/tasks/{id}/events`), read from a
 * streaming fetch body, so it works wherever fetch does (Node 20, browsers, Workers) and can
 * send the API key as a header, which EventSource cannot. Ends when the server ends the stream;
 * a 204 (nothing left after `after`) is an empty stream.
 */
export async function* sseEvents(http: Http, url: string, signal: AbortSignal): AsyncGenerator<TaskEvent> {
	const { status, body } = await openStream(http, url, signal);
	if (status === 204 || !body) return;
	const reader = body.getReader();
	const decoder = new TextDecoder();
	let buffer = "";
	try {
		for (;;) {
			const { value, done } = await reader.read();
			if (done) return;
			buffer += decoder.decode(value, { stream: true });
			let end: number;
			while ((end = frameEnd(buffer)) >= 0) {
				const frame = buffer.slice(0, end);
				buffer = buffer.slice(end).replace(/^(\r\n|\n|\r){2}/, "");
				const event = parseFrame(frame);
				if (event) yield event;
			}
		}
	} finally {
		await reader.cancel().catch(() => {});
	}
}

async function openStream(
	http: Http,
	url: string,
	signal: AbortSignal,
): Promise<{ status: number; body: ReadableStream<Uint8Array> | null }> {
	const res = await http.fetch(url, { headers: http.headers({ accept: "text/event-stream" }), signal });
	if (res.ok) return { status: res.status, body: res.body };
	throw await http.errorOf(res);
}

function frameEnd(buffer: string): number {
	const match = /(\r\n|\n|\r)(\r\n|\n|\r)/.exec(buffer);
	return match ? match.index : -1;
}

/** One SSE frame's `data:` lines, parsed as an event (comments and `retry:` frames give nothing). */
function parseFrame(frame: string): TaskEvent | null {
	const data = frame
		.split(/\r\n|\n|\r/)
		.filter((line) => line.startsWith("data:"))
		.map((line) => line.slice(5).replace(/^ /, ""))
		.join("\n");
	if (data === "") return null;
	try {
		const event = JSON.parse(data) as Partial<TaskEvent>;
		return typeof event.seq === "number" && typeof event.task_id === "string" ? (event as TaskEvent) : null;
	} catch {
		return null;
	}
}
