/** Files through the API, as the tests use them: uploads, downloads as bytes, digests, test images. */
import { env } from "cloudflare:workers";
import { ORIGIN, send, type EnvOverrides } from "./api";

/** https://images.edgetask.test is served by the test process (test/shared/imageOrigin.ts). */
export const IMAGE_ORIGIN = "https://images.edgetask.test";

export interface Upload {
	id: string;
	bytes: number;
	content_type: string;
	sha256: string;
}

/** Calls `path` and reads the body as bytes. */
export async function fetchBytes(
	path: string,
	init: RequestInit = {},
	overrides?: EnvOverrides,
): Promise<{ res: Response; bytes: Uint8Array }> {
	const res = await send(new Request(`${ORIGIN}${path}`, init), overrides);
	return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** POST /v1/files with `body`; fails unless 201. */
export async function upload(body: BodyInit, contentType = "application/octet-stream"): Promise<Upload> {
	const res = await send(new Request(`${ORIGIN}/v1/files`, { method: "POST", headers: { "content-type": contentType }, body }));
	const json = (await res.json()) as Upload;
	if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${JSON.stringify(json)}`);
	return json;
}

export async function sha256Hex(bytes: BufferSource): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", bytes);
	return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `n` bytes where byte i is `i % 251` (what the `emit` test processor writes). */
export function pattern(n: number, from = 0): Uint8Array {
	const bytes = new Uint8Array(n);
	for (let i = 0; i < n; i++) bytes[i] = (from + i) % 251;
	return bytes;
}

/** A stream of `bytes` in chunks, with no length the runtime could know (a chunked upload). */
export function chunked(bytes: Uint8Array, chunk = 1024 * 1024): ReadableStream<Uint8Array> {
	let offset = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (offset >= bytes.byteLength) return controller.close();
			controller.enqueue(bytes.slice(offset, offset + chunk));
			offset += chunk;
		},
	});
}

/** A test image made by sharp in the test process: four quadrants, red, green / blue, white. */
export async function testImage(width: number, height: number, format: "png" | "jpeg" | "webp"): Promise<Uint8Array> {
	const res = await fetch(`${IMAGE_ORIGIN}/gen/${width}x${height}.${format}`);
	if (!res.ok) throw new Error(`test image ${width}x${height}.${format}: ${res.status}`);
	return new Uint8Array(await res.arrayBuffer());
}

export interface Decoded {
	format: string;
	width: number;
	height: number;
	quadrants: { tl: number[]; tr: number[]; bl: number[]; br: number[] };
}

/** Decodes image bytes with sharp (libvips) in the test process: an independent decoder. */
export async function decodeImage(bytes: Uint8Array): Promise<Decoded> {
	const res = await fetch(`${IMAGE_ORIGIN}/decode`, { method: "POST", body: bytes });
	if (!res.ok) throw new Error(`decode: ${res.status} ${await res.text()}`);
	return (await res.json()) as Decoded;
}

/** True when R2 holds file `id`. */
export async function fileExists(id: string): Promise<boolean> {
	return (await env.FILES.head(`files/${id}`)) !== null;
}

/** How many files R2 holds now. */
export async function fileCount(): Promise<number> {
	let count = 0;
	let cursor: string | undefined;
	do {
		const page = await env.FILES.list({ prefix: "files/", cursor });
		count += page.objects.length;
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor);
	return count;
}
