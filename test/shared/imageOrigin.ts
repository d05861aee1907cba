/**
 * A stand-in for the internet's image servers, for the worker tests: the test runtime sends every
 * outbound fetch of the worker here (`outboundService` in vitest.config.ts), and this handler, in
 * the test's Node process, answers those to `https://images.edgetask.test`. The worker's own code
 * has no test switch: it fetches a public-looking https URL exactly as deployed, and its SSRF
 * guard still refuses loopback and private addresses. Images are made here with sharp (libvips),
 * and `POST /decode` decodes what the worker produced with the same independent library.
 *
 * Routes: GET /gen/{w}x{h}.{png|jpeg|webp} (four coloured quadrants: red, green / blue, white),
 * GET /status/{code}, GET /text, GET /redirect?to=URL, GET /bytes/{n} (chunked, no length),
 * POST /decode (JSON: format, width, height, quadrant colours). Other hosts pass through.
 */
import sharp from "sharp";

export const IMAGE_ORIGIN = "https://images.edgetask.test";

/** Red, green, blue, white quadrants: a resize keeps each colour where it was. */
export async function quadrants(width: number, height: number, format: "png" | "jpeg" | "webp"): Promise<Buffer> {
	const w2 = Math.ceil(width / 2);
	const h2 = Math.ceil(height / 2);
	const block = (r: number, g: number, b: number, w: number, h: number) =>
		sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } })
			.png()
			.toBuffer();
	const image = sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } }).composite([
		{ input: await block(255, 0, 0, w2, h2), left: 0, top: 0 },
		{ input: await block(0, 255, 0, width - w2, h2), left: w2, top: 0 },
		{ input: await block(0, 0, 255, w2, height - h2), left: 0, top: h2 },
	]);
	return image.toFormat(format, format === "png" ? {} : { quality: 90 }).toBuffer();
}

/** What a decoder sees in an image: format, size, and the colour at the centre of each quadrant. */
export async function decode(bytes: Buffer) {
	const meta = await sharp(bytes).metadata();
	const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
	const at = (fx: number, fy: number) => {
		const x = Math.min(info.width - 1, Math.floor(info.width * fx));
		const y = Math.min(info.height - 1, Math.floor(info.height * fy));
		const i = (y * info.width + x) * info.channels;
		return [data[i], data[i + 1], data[i + 2]];
	};
	return {
		format: meta.format,
		width: info.width,
		height: info.height,
		quadrants: { tl: at(0.25, 0.25), tr: at(0.75, 0.25), bl: at(0.25, 0.75), br: at(0.75, 0.75) },
	};
}

/**
 * Any other host, as the worker asked (the webhook receiver of the tests, for one). The runtime's
 * Request is not this process's, so it is copied rather than handed to fetch as it is.
 */
async function passThrough(request: Request): Promise<Response> {
	const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
	return fetch(request.url, { method: request.method, headers: request.headers, body, redirect: "manual" });
}

export async function imageOrigin(request: Request): Promise<Response> {
	const url = new URL(request.url);
	if (url.hostname !== new URL(IMAGE_ORIGIN).hostname) return passThrough(request);
	const gen = /^\/gen\/(\d+)x(\d+)\.(png|jpeg|webp)$/.exec(url.pathname);
	if (gen) {
		const [, w, h, format] = gen;
		const bytes = await quadrants(Number(w), Number(h), format as "png" | "jpeg" | "webp");
		return new Response(bytes, { headers: { "content-type": `image/${format}` } });
	}
	const status = /^\/status\/(\d{3})$/.exec(url.pathname);
	if (status) return new Response(`status ${status[1]}`, { status: Number(status[1]) });
	if (url.pathname === "/text") return new Response("this is not an image", { headers: { "content-type": "text/plain" } });
	if (url.pathname === "/redirect") return new Response(null, { status: 302, headers: { location: url.searchParams.get("to") ?? "/" } });
	const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname);
	if (bytes) {
		let left = Number(bytes[1]);
		const chunk = new Uint8Array(1024 * 1024).fill(7);
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (left <= 0) return controller.close();
				const n = Math.min(left, chunk.byteLength);
				controller.enqueue(chunk.subarray(0, n));
				left -= n;
			},
		});
		return new Response(body, { headers: { "content-type": "image/jpeg" } });
	}
	if (url.pathname === "/decode" && request.method === "POST") {
		try {
			return Response.json(await decode(Buffer.from(await request.arrayBuffer())));
		} catch (e) {
			return Response.json({ error: String(e) }, { status: 422 });
		}
	}
	return new Response("not found", { status: 404 });
}
