import { EdgetaskError, HttpError, RateLimitedError } from "./errors";
import type { ErrorBody, TaskUrls } from "./types";

/** How the client reaches the server; see `ClientOptions` in client.ts for what each means. */
export interface HttpOptions {
	baseUrl: string;
	apiKey?: string;
	fetch?: typeof fetch;
	maxRetries?: number;
	maxRetryAfterS?: number;
	headers?: Record<string, string>;
}

export interface Answer<T> {
	status: number;
	headers: Headers;
	body: T;
}

export interface RequestOptions {
	method?: string;
	/** Sent as JSON. */
	json?: unknown;
	headers?: Record<string, string>;
	signal?: AbortSignal;
	/** Statuses that are answers, not errors (e.g. 204). 2xx always are. */
	accept?: number[];
}

/**
 * A task as the client addresses it: its id, a task object as the server returned it (its URLs
 * may carry a capability token), or one of its URLs (`urls.get`, `urls.ws`, …, token included).
 */
export type TaskRef = string | { id: string; urls?: Partial<TaskUrls> };

/** Where one task lives: the API's base URL, its id, and the capability token to present, if any. */
export interface TaskLocation {
	base: string;
	id: string;
	token: string | null;
}

const TASK_PATH = /^(.*)\/v1\/tasks\/([^/]+)(?:\/ws|\/events|\/cancel|\/output)?\/?$/;

/** Sleeps `ms`, or rejects with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal?.aborted) return reject(abortReason(signal));
		const onAbort = () => {
			clearTimeout(timer);
			reject(abortReason(signal));
		};
		const timer = setTimeout(() => {
			signal?.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		signal?.addEventListener("abort", onAbort, { once: true });
	});
}

/** Why a signal aborted: the caller's own reason (passed on untouched, as fetch does), else an AbortError. */
export function abortReason(signal: AbortSignal | undefined): Error {
	return (signal?.reason as Error | undefined) ?? new DOMException("This operation was aborted", "AbortError");
}

/** Seconds of a Retry-After header (delta-seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(headers: Headers): number | null {
	const raw = headers.get("retry-after");
	if (raw === null || raw.trim() === "") return null;
	const seconds = Number(raw);
	if (Number.isFinite(seconds)) return Math.max(0, seconds);
	const date = Date.parse(raw);
	return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

function parseBody(text: string): unknown {
	if (text === "") return null;
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

function isErrorBody(body: unknown): body is ErrorBody {
	const error = (body as Partial<ErrorBody> | null)?.error;
	return typeof error === "object" && error !== null && typeof error.code === "string" && typeof error.message === "string";
}

/** JSON over HTTP with the client's credentials, its error classes and its 429 policy. */
export class Http {
	readonly base: string;
	private readonly fetchFn: typeof fetch;
	private readonly maxRetries: number;
	private readonly maxRetryAfterS: number;

	constructor(private readonly options: HttpOptions) {
		this.base = options.baseUrl.replace(/\/+$/, "");
		// Bound to globalThis: a detached `fetch` throws "Illegal invocation" in browsers and Workers.
		this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
		this.maxRetries = options.maxRetries ?? 3;
		this.maxRetryAfterS = options.maxRetryAfterS ?? 60;
	}

	get fetch(): typeof fetch {
		return this.fetchFn;
	}

	/** Headers every request carries: the API key (when there is one) and the caller's own. */
	headers(extra: Record<string, string> = {}): Record<string, string> {
		const headers: Record<string, string> = { ...this.options.headers, ...extra };
		if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
		return headers;
	}

	url(path: string): string {
		return `${this.base}${path}`;
	}

	/**
	 * Sends a request and parses its JSON answer. 429, and 503 with Retry-After, are retried
	 * after the time the server asks for (up to `maxRetries` times, each wait at most
	 * `maxRetryAfterS`), then thrown as RateLimitedError; other error statuses throw HttpError.
	 */
	async request<T>(url: string, options: RequestOptions = {}): Promise<Answer<T>> {
		const headers = this.headers(options.headers);
		let body: string | undefined;
		if (options.json !== undefined) {
			headers["content-type"] = "application/json";
			body = JSON.stringify(options.json);
		}
		for (let attempt = 0; ; attempt++) {
			const res = await this.fetchFn(url, { method: options.method ?? "GET", headers, body, signal: options.signal });
			if (res.ok || options.accept?.includes(res.status)) {
				return { status: res.status, headers: res.headers, body: parseBody(await res.text()) as T };
			}
			const error = await this.errorOf(res);
			if (!(error instanceof RateLimitedError) || attempt >= this.maxRetries || error.retryAfter > this.maxRetryAfterS) throw error;
			await delay(error.retryAfter * 1000, options.signal);
		}
	}

	/**
	 * Sends a request and returns the answer as it is (a byte stream, for files), with the same
	 * credentials, error classes and 429 policy as `request`. `body` must be re-readable (not a
	 * stream), since a refused request is sent again.
	 */
	async raw(
		url: string,
		init: { method?: string; body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {},
	): Promise<Response> {
		for (let attempt = 0; ; attempt++) {
			const res = await this.fetchFn(url, {
				method: init.method ?? "GET",
				body: init.body,
				headers: this.headers(init.headers),
				signal: init.signal,
			});
			if (res.ok || res.status === 304) return res;
			const error = await this.errorOf(res);
			if (!(error instanceof RateLimitedError) || attempt >= this.maxRetries || error.retryAfter > this.maxRetryAfterS) throw error;
			await delay(error.retryAfter * 1000, init.signal);
		}
	}

	/** The error an unsuccessful answer stands for: RateLimitedError for 429 (and 503 with Retry-After), else HttpError. */
	async errorOf(res: Response): Promise<HttpError> {
		const parsed = parseBody(await res.text());
		const body: ErrorBody = isErrorBody(parsed)
			? parsed
			: { error: { code: `http_${res.status}`, message: typeof parsed === "string" && parsed ? parsed.slice(0, 500) : res.statusText } };
		const retryAfter = retryAfterSeconds(res.headers);
		if (res.status === 429 || (res.status === 503 && retryAfter !== null)) {
			return new RateLimitedError(res.status, body, res.headers, retryAfter ?? 1);
		}
		return new HttpError(res.status, body, res.headers);
	}

	/** Where a task lives, from any TaskRef. A URL brings its own base and token. */
	locate(ref: TaskRef): TaskLocation {
		if (typeof ref === "string") {
			if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) return { base: this.base, id: ref, token: null };
			return this.fromUrl(ref);
		}
		const withToken = ref.urls?.get ?? ref.urls?.ws ?? ref.urls?.events ?? ref.urls?.cancel ?? ref.urls?.output;
		const token = withToken ? this.fromUrl(withToken).token : null;
		return { base: this.base, id: ref.id, token };
	}

	private fromUrl(raw: string): TaskLocation {
		const url = new URL(raw);
		const match = TASK_PATH.exec(url.pathname);
		if (!match?.[2]) throw new EdgetaskError(`Not a task URL: ${raw}`);
		const scheme = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
		return { base: `${scheme}//${url.host}${match[1] ?? ""}`, id: decodeURIComponent(match[2]), token: url.searchParams.get("token") };
	}

	/** A URL of the task: `kind` "" (the task), "/ws", "/events" or "/cancel"; the token and `query` added. */
	taskUrl(at: TaskLocation, kind: "" | "/ws" | "/events" | "/cancel" | "/output", query: Record<string, string> = {}): string {
		const url = new URL(`${at.base}/v1/tasks/${encodeURIComponent(at.id)}${kind}`);
		if (at.token) url.searchParams.set("token", at.token);
		for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
		if (kind === "/ws") url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
		return url.href;
	}
}
