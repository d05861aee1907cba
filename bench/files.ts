/**
 * Files and images, against edgetask on `wrangler dev` (real local R2, the Images binding run by
 * wrangler through sharp):
 *   F1  a 20 MiB file uploaded (POST /v1/files) and downloaded (GET /v1/files/{id}) N times in
 *       turn: MiB/s each way, the sha256 checked on every round trip.
 *   I1  image.resize of one fixed 1920×1080 JPEG (made here, deterministic) to 256 px wide JPEG:
 *       resizes per second at concurrency 1 and 4, each task submitted with `Prefer: wait=60`,
 *       its output fetched and its size checked.
 * Every loop is bounded in count and in time.
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { summarize, type Summary } from "./lib.ts";

const MiB = 1024 * 1024;

export interface F1Result {
	n: number;
	bytes: number;
	uploadMiBps: Summary;
	downloadMiBps: Summary;
	errors: string[];
}

export interface I1Result {
	image: { width: number; height: number; bytes: number };
	c1: { n: number; perS: number; ms: Summary };
	c4: { n: number; perS: number; ms: Summary };
	errors: string[];
}

/** Byte i of the F1 file: fixed, so every run moves the same bytes. */
function fileBytes(size: number): Uint8Array {
	const bytes = new Uint8Array(size);
	let x = 2463534242;
	for (let i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		bytes[i] = x & 0xff;
	}
	return bytes;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export async function runF1(base: string, apiKey: string, n: number, deadlineMs: number): Promise<F1Result> {
	const bytes = fileBytes(20 * MiB);
	const digest = sha256(bytes);
	const up: number[] = [];
	const down: number[] = [];
	const errors: string[] = [];
	const auth = { authorization: `Bearer ${apiKey}` };
	const end = Date.now() + deadlineMs;
	for (let i = 0; i < n && Date.now() < end; i++) {
		try {
			let t = performance.now();
			const res = await fetch(`${base}/v1/files`, {
				method: "POST",
				headers: { ...auth, "content-type": "application/octet-stream" },
				body: bytes,
			});
			const file = (await res.json()) as { id: string; sha256: string };
			const upMs = performance.now() - t;
			if (res.status !== 201 || file.sha256 !== digest) throw new Error(`upload ${res.status} ${JSON.stringify(file).slice(0, 200)}`);
			t = performance.now();
			const got = await fetch(`${base}/v1/files/${file.id}`, { headers: auth });
			const back = new Uint8Array(await got.arrayBuffer());
			const downMs = performance.now() - t;
			if (got.status !== 200 || sha256(back) !== digest) throw new Error(`download ${got.status}, ${back.byteLength} bytes`);
			up.push(20 / (upMs / 1000));
			down.push(20 / (downMs / 1000));
		} catch (e) {
			errors.push(String(e));
		}
	}
	return { n: up.length, bytes: bytes.byteLength, uploadMiBps: summarize(up), downloadMiBps: summarize(down), errors };
}

/**
 * The fixed 1920×1080 test photo: a gradient with seeded noise (so the JPEG costs what a photo
 * costs to decode), encoded by sharp at quality 85.
 */
export async function benchJpeg(): Promise<Buffer> {
	const width = 1920;
	const height = 1080;
	const raw = Buffer.alloc(width * height * 3);
	let x = 88172645;
	for (let y = 0; y < height; y++) {
		for (let c = 0; c < width; c++) {
			x ^= x << 13;
			x ^= x >>> 17;
			x ^= x << 5;
			const noise = ((x >>> 0) % 41) - 20;
			const i = (y * width + c) * 3;
			raw[i] = Math.max(0, Math.min(255, Math.round((255 * c) / width) + noise));
			raw[i + 1] = Math.max(0, Math.min(255, Math.round((255 * y) / height) + noise));
			raw[i + 2] = Math.max(0, Math.min(255, 128 + Math.round(64 * Math.sin(c / 60) * Math.cos(y / 45)) + noise));
		}
	}
	return sharp(raw, { raw: { width, height, channels: 3 } })
		.jpeg({ quality: 85 })
		.toBuffer();
}

async function resizeOnce(base: string, auth: Record<string, string>, fileId: string): Promise<number> {
	const t = performance.now();
	const res = await fetch(`${base}/v1/tasks`, {
		method: "POST",
		headers: { ...auth, "content-type": "application/json", prefer: "wait=60" },
		body: JSON.stringify({ type: "image.resize", input: { image: { $file: fileId }, width: 256, fit: "contain", format: "jpeg" } }),
	});
	const task = (await res.json()) as { id: string; status: string; output?: { width: number; height: number }; error?: unknown };
	if (task.status !== "succeeded" || task.output?.width !== 256 || task.output.height !== 144) {
		throw new Error(`resize ${res.status} ${task.status} ${JSON.stringify(task.error ?? task.output)}`);
	}
	const out = await fetch(`${base}/v1/tasks/${encodeURIComponent(task.id)}/output`, { headers: auth });
	const bytes = new Uint8Array(await out.arrayBuffer());
	if (out.status !== 200 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error(`output ${out.status}, ${bytes.byteLength} bytes`);
	return performance.now() - t;
}

async function resizeRun(
	base: string,
	auth: Record<string, string>,
	fileId: string,
	n: number,
	conc: number,
	deadlineMs: number,
	errors: string[],
) {
	const times: number[] = [];
	let next = 0;
	const end = Date.now() + deadlineMs;
	const t0 = performance.now();
	await Promise.all(
		Array.from({ length: conc }, async () => {
			while (next < n && Date.now() < end) {
				next++;
				try {
					times.push(await resizeOnce(base, auth, fileId));
				} catch (e) {
					errors.push(String(e));
				}
			}
		}),
	);
	const wallS = (performance.now() - t0) / 1000;
	return { n: times.length, perS: times.length / wallS, ms: summarize(times) };
}

export async function runI1(base: string, apiKey: string, n: number, deadlineMs: number): Promise<I1Result> {
	const auth = { authorization: `Bearer ${apiKey}` };
	const jpeg = await benchJpeg();
	const res = await fetch(`${base}/v1/files`, { method: "POST", headers: { ...auth, "content-type": "image/jpeg" }, body: jpeg });
	const file = (await res.json()) as { id: string };
	if (res.status !== 201) throw new Error(`upload of the test JPEG answered ${res.status}`);
	const errors: string[] = [];
	// Warm the path (the Images binding loads sharp on first use).
	await resizeOnce(base, auth, file.id).catch((e: unknown) => errors.push(`warm-up: ${String(e)}`));
	const c1 = await resizeRun(base, auth, file.id, n, 1, deadlineMs, errors);
	const c4 = await resizeRun(base, auth, file.id, n, 4, deadlineMs, errors);
	return { image: { width: 1920, height: 1080, bytes: jpeg.byteLength }, c1, c4, errors };
}
