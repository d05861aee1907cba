import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one JSON error body every route answers with: `{ error: { code, message, details? } }`. */
export interface ErrorBody {
	error: { code: string; message: string; details?: unknown };
}

/**
 * A failure that maps straight to an HTTP answer. Routes throw it; the app's single `onError`
 * turns it into the JSON error envelope, so no route builds error responses by hand.
 *
 * @example
 * throw new ApiError(404, "task_not_found", `No task with id ${id}`);
 */
export class ApiError extends Error {
	constructor(
		readonly status: ContentfulStatusCode,
		readonly code: string,
		message: string,
		readonly details?: unknown,
		readonly headers: Record<string, string> = {},
	) {
		super(message);
		this.name = "ApiError";
	}

	toBody(): ErrorBody {
		const error: ErrorBody["error"] = { code: this.code, message: this.message };
		if (this.details !== undefined) error.details = this.details;
		return { error };
	}
}
