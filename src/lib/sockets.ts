/**
 * What every hibernating WebSocket in edgetask shares (the per-task sockets of TaskCoordinator
 * and the multi-task sockets of SubscriptionHub): the ping the runtime answers by itself, sends
 * that never throw, and the close handshake.
 */

/** `{"type":"ping"}` is answered with `{"type":"pong"}` by the runtime, without waking a hibernated object. */
export function answerPings(ctx: DurableObjectState): void {
	ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
}

/** Sends a JSON frame (or a ready string); a socket that is closing is skipped: its close handler cleans up. */
export function sendJson(ws: WebSocket, value: unknown): void {
	try {
		ws.send(typeof value === "string" ? value : JSON.stringify(value));
	} catch {
		/* closing */
	}
}

/** Closes a socket; one that is already closed is left alone. */
export function closeSocket(ws: WebSocket, code = 1000, reason = ""): void {
	try {
		ws.close(code, reason);
	} catch {
		/* already closed */
	}
}

/**
 * Completes the close handshake the client started: echo its code (1005, "no status", is not
 * allowed on the wire, so it becomes 1000). Without this the hibernated socket lingers half-closed.
 */
export function echoClose(ws: WebSocket, code: number, reason: string): void {
	closeSocket(ws, code === 1005 ? 1000 : code, reason);
}
