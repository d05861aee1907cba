import type { Origin } from "./config";
import { badResponse, preview, reportedFailure } from "./failures";

/**
 * The seed template's envelope, `{success, code, msg, data: {uuid, result}}`, unwrapped so that
 * an unchanged seed-template server works behind edgetask: `data.result` is the output, and
 * `success: false` fails the task with `msg` (details: the seed's `code`).
 */
export function unwrapSeed(origin: Origin, answer: unknown): unknown {
	if (
		typeof answer !== "object" ||
		answer === null ||
		Array.isArray(answer) ||
		!("success" in answer) ||
		typeof answer.success !== "boolean"
	) {
		return failNotEnvelope(origin, answer);
	}
	const envelope = answer as { success: boolean; code?: unknown; msg?: unknown; data?: unknown };
	if (!envelope.success) {
		const msg = typeof envelope.msg === "string" && envelope.msg ? envelope.msg : `Origin "${origin.name}" reported a failure`;
		const failure = reportedFailure(origin, { message: msg, code: envelope.code ?? null });
		throw failure;
	}
	const data = envelope.data;
	if (typeof data !== "object" || data === null || Array.isArray(data)) return null;
	return "result" in data ? data.result : null;
}

function failNotEnvelope(origin: Origin, answer: unknown): never {
	throw badResponse(origin, 'answered without the seed envelope {"success", "code", "msg", "data"} that its "envelope": "seed" expects', {
		body: preview(answer),
	});
}
