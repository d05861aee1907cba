import { fileKey, hex } from "./model";

/**
 * Serving files and outputs over HTTP: `ETag`, `If-None-Match` (304), one `Range` per request
 * (206 with `Content-Range`; 416 when it lies past the end; several ranges or a stale `If-Range`
 * get the whole body, as RFC 9110 allows), `HEAD`. R2 streams the bytes; nothing is buffered.
 */

/** Files never change once stored, so a client may keep them; they are private to their caller. */
const CACHE_CONTROL = "private, max-age=3600";

type ByteRange = { offset: number; length: number };

/** The single byte range a `Range` header asks for, "unsatisfiable", or null to send it all. */
export function parseRange(header: string | null, size: number): ByteRange | "unsatisfiable" | null {
	if (!header) return null;
	const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
	if (!match) return null;
	const [, first = "", last = ""] = match;
	if (first === "" && last === "") return null;
	if (first === "") {
		const suffix = Number(last);
		if (suffix === 0) return "unsatisfiable";
		const length = Math.min(suffix, size);
		return { offset: size - length, length };
	}
	const offset = Number(first);
	if (offset >= size) return "unsatisfiable";
	const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
	if (end < offset) return null;
	return { offset, length: end - offset + 1 };
}

/** True when an `If-None-Match` list names `etag` (weak comparison, `*` matches anything). */
function noneMatch(header: string | null, etag: string): boolean {
	if (!header) return false;
	const strip = (tag: string) => tag.trim().replace(/^W\//, "");
	return header.split(",").some((tag) => tag.trim() === "*" || strip(tag) === strip(etag));
}

/** Whether the request's Range still applies: no `If-Range`, or one naming the current etag. */
function rangeApplies(request: Request, etag: string): boolean {
	const ifRange = request.headers.get("if-range");
	return ifRange === null || ifRange.trim() === etag;
}

interface Body {
	size: number;
	etag: string;
	contentType: string;
	/** The bytes, whole or one range. */
	read(range: ByteRange | null): Promise<ReadableStream<Uint8Array> | Uint8Array | null>;
}

async function respond(request: Request, body: Body): Promise<Response | null> {
	const headers = new Headers({
		etag: body.etag,
		"content-type": body.contentType,
		"accept-ranges": "bytes",
		"cache-control": CACHE_CONTROL,
	});
	if (noneMatch(request.headers.get("if-none-match"), body.etag)) return new Response(null, { status: 304, headers });
	const range = rangeApplies(request, body.etag) ? parseRange(request.headers.get("range"), body.size) : null;
	if (range === "unsatisfiable") {
		headers.set("content-range", `bytes */${body.size}`);
		headers.set("content-type", "application/json");
		const error = { error: { code: "range_not_satisfiable", message: `The file has ${body.size} bytes` } };
		return new Response(JSON.stringify(error), { status: 416, headers });
	}
	const length = range ? range.length : body.size;
	headers.set("content-length", String(length));
	if (range) headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${body.size}`);
	const status = range ? 206 : 200;
	if (request.method === "HEAD") return new Response(null, { status, headers });
	const bytes = await body.read(range);
	if (bytes === null) return null;
	return new Response(bytes, { status, headers });
}

/** Serves stored file `id`; null when it does not exist. */
export async function serveFile(bucket: R2Bucket, id: string, request: Request): Promise<Response | null> {
	const key = fileKey(id);
	// A plain GET needs one R2 read; ranges and revalidation look at the object's size and etag first.
	if (request.method === "GET" && !request.headers.has("range") && !request.headers.has("if-none-match")) {
		const object = await bucket.get(key);
		if (!object) return null;
		return respond(request, {
			size: object.size,
			etag: object.httpEtag,
			contentType: object.httpMetadata?.contentType ?? "application/octet-stream",
			read: async () => object.body,
		});
	}
	const head = await bucket.head(key);
	if (!head) return null;
	return respond(request, {
		size: head.size,
		etag: head.httpEtag,
		contentType: head.httpMetadata?.contentType ?? "application/octet-stream",
		read: async (range) => {
			const object = await bucket.get(key, range ? { range } : undefined);
			return object ? object.body : null;
		},
	});
}

/** Serves JSON held in memory (an inline output) with the same headers and ranges as a file. */
export async function serveJson(value: unknown, request: Request): Promise<Response> {
	const bytes = new TextEncoder().encode(JSON.stringify(value));
	const etag = `"${hex(await crypto.subtle.digest("SHA-256", bytes)).slice(0, 32)}"`;
	const response = await respond(request, {
		size: bytes.byteLength,
		etag,
		contentType: "application/json",
		read: async (range) => (range ? bytes.subarray(range.offset, range.offset + range.length) : bytes),
	});
	// In-memory bytes are always there to read.
	return response ?? new Response(bytes);
}
