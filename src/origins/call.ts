import { PermanentError, RetryableError, type ProcessorContext } from "../processors/types";
import { LineTooLong, readCapped, readPrefix } from "./body";
import type { Envelope, Origin } from "./config";
import { unwrapSeed } from "./envelope";
import { badResponse, ERROR_BODY_BYTES, reportedFailure, statusFailure, timeoutFailure, transportFailure } from "./failures";
import { BadStreamLine, followStream, streamFormat } from "./stream";

/** One request of an `http` task: where on the origin, what to send, how its answer is wrapped. */
export interface OriginRequest {
	path: string;
	body: unknown;
	envelope: Envelope;
}

/**
 * POSTs the request to the origin and reads its answer into the task's output, or throws the
 * task's error (`RetryableError` for what another attempt may fix, `PermanentError` otherwise).
 *
 * The request is aborted (the origin sees its connection close) when the task is canceled or
 * times out (`ctx.signal`) and when the origin's own `timeout_s` passes; every read of the answer
 * is capped at `maxBytes` (a streamed answer: per line), so no answer can wedge the task.
 */
export async function callOrigin(origin: Origin, req: OriginRequest, ctx: ProcessorContext, maxBytes: number): Promise<unknown> {
	const deadline = new AbortController();
	const timer = setTimeout(() => deadline.abort(timeoutFailure(origin)), origin.timeoutS * 1000);
	const signal = AbortSignal.any([ctx.signal, deadline.signal]);
	const headers: Record<string, string> = {
		"content-type": "application/json",
		accept: "application/json, application/x-ndjson, text/event-stream",
		"idempotency-key": ctx.taskId,
		"x-edgetask-attempt": String(ctx.attempt),
		"user-agent": "edgetask",
	};
	if (origin.token) headers.authorization = `Bearer ${origin.token}`;
	try {
		// Redirects are not followed: the request would carry the origin's token elsewhere.
		const res = await fetch(`${origin.url}${req.path}`, {
			method: "POST",
			headers,
			body: JSON.stringify(req.body),
			redirect: "manual",
			signal,
		});
		return await readAnswer(origin, res, req.envelope, ctx, maxBytes, signal);
	} catch (e) {
		// The task is ending (canceled, timed out): its object decides the outcome, not this answer.
		if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error(String(ctx.signal.reason));
		if (deadline.signal.aborted) throw timeoutFailure(origin);
		if (e instanceof PermanentError || e instanceof RetryableError) throw e;
		if (e instanceof LineTooLong) throw new PermanentError(`Origin "${origin.name}": ${e.message} (MAX_OUTPUT_BYTES)`, "output_too_large");
		if (e instanceof BadStreamLine) throw badResponse(origin, `answered badly: ${e.message}`);
		throw transportFailure(origin, e);
	} finally {
		clearTimeout(timer);
	}
}

async function readAnswer(
	origin: Origin,
	res: Response,
	envelope: Envelope,
	ctx: ProcessorContext,
	maxBytes: number,
	signal: AbortSignal,
): Promise<unknown> {
	if (res.status < 200 || res.status > 299) {
		throw statusFailure(origin, res, await readPrefix(res.body, ERROR_BODY_BYTES, signal));
	}
	const unwrap = (answer: unknown) => (envelope === "seed" ? unwrapSeed(origin, answer) : answer);
	const contentType = res.headers.get("content-type");
	const format = streamFormat(contentType);
	if (format) {
		const end = await followStream(format, res.body, maxBytes, signal, (percent, message) => ctx.progress(percent, message));
		if (end.kind === "output") return unwrap(end.output);
		if (end.kind === "error") throw reportedFailure(origin, end.error);
		// The connection closed mid-answer (the origin crashed or restarted): worth another attempt.
		throw new RetryableError(
			`Origin "${origin.name}" closed its ${contentType} answer without an output or error message`,
			"origin_stream_ended",
		);
	}
	const bytes = await readCapped(res.body, maxBytes, signal);
	if (bytes === null) {
		throw new PermanentError(`Origin "${origin.name}" answered more than ${maxBytes} bytes (MAX_OUTPUT_BYTES)`, "output_too_large");
	}
	const text = new TextDecoder().decode(bytes);
	if (text.trim() === "") return unwrap(null);
	let answer: unknown;
	try {
		answer = JSON.parse(text);
	} catch {
		throw badResponse(origin, `answered ${res.status} with a body that is not JSON`, {
			status: res.status,
			content_type: contentType,
			body: text.slice(0, ERROR_BODY_BYTES),
		});
	}
	return unwrap(answer);
}
