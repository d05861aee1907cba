/**
 * `image.resize` on the real local runtime: the Images binding (run by wrangler's local mode
 * through sharp), real R2, and test images made and decoded by sharp in the test process
 * (test/shared/imageOrigin.ts), so the output is checked by a decoder independent of the worker.
 */
import { describe, expect, it } from "vitest";
import { call, errorOf, settled, submitTask } from "./support/api";
import { createWithoutMessage, dispatch } from "./support/objects";
import { openSse } from "./support/sse";
import { decodeImage, fetchBytes, fileExists, IMAGE_ORIGIN, testImage, upload, type Decoded } from "./support/files";

const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];
const WHITE = [255, 255, 255];

/** Each quadrant kept its colour (lossy formats within a tolerance). */
function expectQuadrants(decoded: Decoded): void {
	const near = (actual: number[], expected: number[]) => actual.every((v, i) => Math.abs(v - (expected[i] ?? 0)) <= 40);
	expect(near(decoded.quadrants.tl, RED), `top left ${decoded.quadrants.tl}`).toBe(true);
	expect(near(decoded.quadrants.tr, GREEN), `top right ${decoded.quadrants.tr}`).toBe(true);
	expect(near(decoded.quadrants.bl, BLUE), `bottom left ${decoded.quadrants.bl}`).toBe(true);
	expect(near(decoded.quadrants.br, WHITE), `bottom right ${decoded.quadrants.br}`).toBe(true);
}

async function resize(input: Record<string, unknown>) {
	const { res, body } = await submitTask({ type: "image.resize", input }, { wait: 30 });
	if (res.status !== 200) throw new Error(`resize answered ${res.status}: ${JSON.stringify(body)}`);
	return body;
}

async function outputImage(taskId: string): Promise<{ decoded: Decoded; contentType: string | null; bytes: number }> {
	const { res, bytes } = await fetchBytes(`/v1/tasks/${taskId}/output`);
	expect(res.status).toBe(200);
	expect(Number(res.headers.get("content-length"))).toBe(bytes.byteLength);
	return { decoded: await decodeImage(bytes), contentType: res.headers.get("content-type"), bytes: bytes.byteLength };
}

describe("image.resize", () => {
	const cases = [
		{ from: "png", to: "jpeg" },
		{ from: "jpeg", to: "webp" },
		{ from: "webp", to: "png" },
	] as const;
	it.each(cases)("resizes a $from upload to $to: dimensions, format and content checked by decoding", async ({ from, to }) => {
		const file = await upload(await testImage(640, 480, from), `image/${from}`);
		const task = await resize({ image: { $file: file.id }, width: 160, fit: "contain", format: to });
		expect(task.status).toBe("succeeded");
		expect(task.output).toEqual({
			$file: expect.stringMatching(/^file_/),
			bytes: expect.any(Number),
			content_type: `image/${to}`,
			width: 160,
			height: 120,
		});
		const { decoded, contentType, bytes } = await outputImage(task.id);
		expect(contentType).toBe(`image/${to}`);
		expect((task.output as { bytes: number }).bytes).toBe(bytes);
		expect(decoded).toMatchObject({ format: to, width: 160, height: 120 });
		expectQuadrants(decoded);
	});

	it("fits: contain keeps the aspect ratio inside the box, cover fills and crops, fill stretches; height alone scales", async () => {
		const file = await upload(await testImage(640, 480, "png"), "image/png");
		const image = { $file: file.id };
		const expectations = [
			{ input: { width: 200, height: 200, fit: "contain" }, size: [200, 150] },
			{ input: { width: 200, height: 100, fit: "cover" }, size: [200, 100] },
			{ input: { width: 100, height: 200, fit: "fill" }, size: [100, 200] },
			{ input: { height: 60, fit: "cover" }, size: [80, 60] },
			{ input: { width: 1280, fit: "contain" }, size: [1280, 960] },
		];
		for (const { input, size } of expectations) {
			const task = await resize({ image, format: "png", ...input });
			expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
			const { decoded } = await outputImage(task.id);
			expect([decoded.width, decoded.height], JSON.stringify(input)).toEqual(size);
			expect(task.output).toMatchObject({ width: size[0], height: size[1] });
			expectQuadrants(decoded);
		}
	});

	it("takes an https URL: fetched into a file of the task, resized with quality", async () => {
		const task = await resize({ image: `${IMAGE_ORIGIN}/gen/320x240.jpeg`, width: 64, fit: "contain", format: "jpeg", quality: 50 });
		expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
		const { decoded } = await outputImage(task.id);
		expect(decoded).toMatchObject({ format: "jpeg", width: 64, height: 48 });
		expectQuadrants(decoded);
	});

	it("reports its stages as progress", async () => {
		const file = await upload(await testImage(640, 480, "png"), "image/png");
		const task = await createWithoutMessage({
			type: "image.resize",
			input: { image: { $file: file.id }, width: 32, fit: "contain", format: "png" },
		});
		const { reader } = await openSse(task.id);
		await dispatch(task.id);
		const frames = (await reader?.readAll()) ?? [];
		const stages = frames
			.filter((f) => f.event === "progress")
			.map((f) => (JSON.parse(f.data ?? "{}") as { data: { progress: { message: string } } }).data.progress.message);
		expect(stages.length).toBeGreaterThan(0);
		for (const stage of stages)
			expect(stage).toMatch(/^(fetching the image|reading the image header|resizing \d+×\d+ png|storing the result)$/);
		expect(frames.some((f) => f.event === "succeeded")).toBe(true);
		expect((await settled(task.id)).progress).toEqual({ percent: 100, message: "storing the result" });
	});
});

describe("image.resize: bad input", () => {
	it("refuses at submit, with 400 and nothing stored: a URL that is not https, private or loopback hosts, bad sizes", async () => {
		const base = { width: 10, fit: "contain", format: "png" };
		const bad: Record<string, unknown>[] = [
			{ ...base, image: "http://images.edgetask.test/gen/10x10.png" },
			{ ...base, image: "https://127.0.0.1/a.png" },
			{ ...base, image: "https://localhost/a.png" },
			{ ...base, image: "https://169.254.169.254/latest/meta-data" },
			{ ...base, image: "https://[::1]/a.png" },
			{ ...base, image: "https://10.1.2.3/a.png" },
			{ ...base, image: "https://images.edgetask.test:8443/a.png" },
			{ ...base, image: "not a url" },
			{ image: `${IMAGE_ORIGIN}/gen/10x10.png`, fit: "contain", format: "png" },
			{ ...base, image: `${IMAGE_ORIGIN}/gen/10x10.png`, width: 12_001 },
			{ ...base, image: `${IMAGE_ORIGIN}/gen/10x10.png`, format: "gif" },
			{ ...base, image: `${IMAGE_ORIGIN}/gen/10x10.png`, fit: "squash" },
			{ ...base, image: `${IMAGE_ORIGIN}/gen/10x10.png`, quality: 0 },
			{ ...base, image: `${IMAGE_ORIGIN}/gen/10x10.png`, extra: true },
		];
		for (const input of bad) {
			const { res, body } = await submitTask({ type: "image.resize", input });
			expect(res.status, JSON.stringify(input)).toBe(400);
			expect(errorOf(body).code).toBe("invalid_input");
		}
	});

	it("fails a file that is not an image, and a corrupt one, as invalid_image without retrying", async () => {
		const text = await upload("just some text, no pixels here", "image/png");
		const png = await testImage(64, 64, "png");
		const corrupt = await upload(new Uint8Array([...png.slice(0, 40), ...new Uint8Array(200).fill(9)]), "image/png");
		for (const file of [text, corrupt]) {
			const task = await resize({ image: { $file: file.id }, width: 10, fit: "contain", format: "png" });
			expect(task.status).toBe("failed");
			expect(task.error?.code).toBe("invalid_image");
			expect(task.attempts).toBe(1);
		}
	});

	it("resizes the largest image it takes: 12,000 × 8,000 (96 MP, 12,000 px a side)", async () => {
		const task = await resize({ image: `${IMAGE_ORIGIN}/gen/12000x8000.jpeg`, width: 300, fit: "contain", format: "jpeg" });
		expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
		const { decoded } = await outputImage(task.id);
		expect(decoded).toMatchObject({ format: "jpeg", width: 300, height: 200 });
		expectQuadrants(decoded);
	});

	it("fails an image larger than Cloudflare Images resizes (image_too_large), before resizing", async () => {
		const task = await resize({ image: `${IMAGE_ORIGIN}/gen/12001x4.png`, width: 10, fit: "contain", format: "png" });
		expect(task.status).toBe("failed");
		expect(task.error?.code).toBe("image_too_large");
		expect(task.error?.message).toContain("12001×4");
		expect(task.attempts).toBe(1);
	});

	it("fails an unreachable URL with its HTTP status: 404 at once, 503 after its retries; a redirect to a private host is refused", async () => {
		const missing = await resize({ image: `${IMAGE_ORIGIN}/status/404`, width: 10, fit: "contain", format: "png" });
		expect(missing.status).toBe("failed");
		expect(missing.error).toEqual({ code: "url_unreachable", message: `GET ${IMAGE_ORIGIN}/status/404 answered HTTP 404` });
		expect(missing.attempts).toBe(1);

		const down = await resize({ image: `${IMAGE_ORIGIN}/status/503`, width: 10, fit: "contain", format: "png" });
		expect(down.status).toBe("failed");
		expect(down.error?.code).toBe("url_unreachable");
		expect(down.error?.message).toContain("HTTP 503");
		expect(down.attempts).toBe(3);

		const sneaky = await resize({
			image: `${IMAGE_ORIGIN}/redirect?to=https://127.0.0.1/secret`,
			width: 10,
			fit: "contain",
			format: "png",
		});
		expect(sneaky.status).toBe("failed");
		expect(sneaky.error?.code).toBe("url_refused");

		const text = await resize({ image: `${IMAGE_ORIGIN}/text`, width: 10, fit: "contain", format: "png" });
		expect(text.error?.code).toBe("invalid_image");
	});

	it("fails a URL body over MAX_UPLOAD_BYTES (input_too_large) and keeps no partial file", async () => {
		const task = await resize({ image: `${IMAGE_ORIGIN}/bytes/${26 * 1024 * 1024}`, width: 10, fit: "contain", format: "png" });
		expect(task.status).toBe("failed");
		expect(task.error?.code).toBe("input_too_large");
		expect(task.attempts).toBe(1);
	});

	it("fails a file that was deleted after submit (file_not_found), for good", async () => {
		const file = await upload(await testImage(20, 20, "png"), "image/png");
		const { env } = await import("cloudflare:workers");
		const task = await createWithoutMessage({
			type: "image.resize",
			input: { image: { $file: file.id }, width: 10, fit: "contain", format: "png" },
		});
		await env.FILES.delete(`files/${file.id}`);
		expect(await fileExists(file.id)).toBe(false);
		await dispatch(task.id);
		const done = await settled(task.id);
		expect(done.error?.code).toBe("file_not_found");
		expect(done.attempts).toBe(1);
		expect((await call(`/v1/tasks/${task.id}/output`)).res.status).toBe(409);
	});
});
