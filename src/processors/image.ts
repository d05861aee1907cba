import { z } from "zod";
import { settings } from "../config";
import { FileRefInput } from "../files/model";
import { fetchRemote, RemoteFetchError, remoteUrlProblem } from "../files/remote";
import { FileTooLargeError, limitBytes } from "../files/store";
import { defineProcessor, PermanentError, RetryableError, type ProcessorContext } from "./types";

/**
 * `image.resize`: resizes a PNG, JPEG or WebP image (an upload or an https URL) and returns the
 * result as a file plus its dimensions. The pixels are handled by Cloudflare Images through the
 * `IMAGES` binding (locally, `wrangler dev` runs it with sharp): nothing is decoded inside the
 * Worker, so the Worker's 128 MB never bounds the image and a resize never blocks the isolate's
 * thread. The README's "Images" section has the measurements behind that choice.
 *
 * Stages (progress): fetching the image, reading its header, resizing and encoding, storing.
 */

const FORMATS = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;
type Format = keyof typeof FORMATS;

/** Cloudflare Images' limits for a transformed image; enforced here too, so local runs fail like deployed ones. */
export const MAX_IMAGE_SIDE = 12_000;
export const MAX_IMAGE_PIXELS = 100_000_000;

/** How each `fit` is asked of the Images binding. */
const FIT = { contain: "contain", cover: "cover", fill: "squeeze" } as const;

/** Images error codes that mean the image itself is unusable (not an image, unsupported, undecodable, too large). */
const BAD_IMAGE_CODES = new Set([9402, 9412, 9413, 9520, 9523]);

const Side = z.number().int().min(1).max(MAX_IMAGE_SIDE);

const ImageUrl = z
	.string()
	.max(2048)
	.superRefine((url, ctx) => {
		const problem = remoteUrlProblem(url);
		if (problem) ctx.addIssue({ code: "custom", message: problem });
	});

export const ResizeInput = z
	.strictObject({
		image: z.union([FileRefInput, ImageUrl]),
		width: Side.optional(),
		height: Side.optional(),
		fit: z.enum(["contain", "cover", "fill"]),
		format: z.enum(["png", "jpeg", "webp"]),
		quality: z.number().int().min(1).max(100).optional(),
	})
	.refine((v) => v.width !== undefined || v.height !== undefined, { message: "give width, height or both", path: ["width"] });

/** The format a file's first bytes announce, if it is one this processor reads. */
export function sniffFormat(head: Uint8Array): Format | null {
	const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
	if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
	if (starts(0xff, 0xd8, 0xff)) return "jpeg";
	if (starts(0x52, 0x49, 0x46, 0x46) && head[8] === 0x57 && head[9] === 0x45 && head[10] === 0x42 && head[11] === 0x50) return "webp";
	return null;
}

/** Reads at least `n` bytes off the front of a stream and gives back a stream of the whole, unread. */
async function peek(stream: ReadableStream<Uint8Array>, n: number): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
	const reader = stream.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	let done = false;
	while (size < n && !done) {
		const next = await reader.read();
		if (next.done) done = true;
		else {
			chunks.push(next.value);
			size += next.value.byteLength;
		}
	}
	const head = new Uint8Array(size);
	let offset = 0;
	for (const c of chunks) {
		head.set(c, offset);
		offset += c.byteLength;
	}
	const rest = new ReadableStream<Uint8Array>({
		start(controller) {
			for (const c of chunks) controller.enqueue(c);
			if (done) controller.close();
		},
		async pull(controller) {
			const next = await reader.read();
			if (next.done) controller.close();
			else controller.enqueue(next.value);
		},
		cancel: (reason) => reader.cancel(reason),
	});
	return { head, stream: rest };
}

function imagesErrorCode(e: unknown): number | null {
	const code = (e as { code?: unknown } | null)?.code;
	return typeof code === "number" ? code : null;
}

/** An Images binding failure: the image's fault fails the task for good, anything else may be retried. */
function imagesFailure(e: unknown, stage: string): Error {
	const message = `${stage}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
	const code = imagesErrorCode(e);
	if (code !== null && BAD_IMAGE_CODES.has(code)) return new PermanentError(message, code === 9413 ? "image_too_large" : "invalid_image");
	return new RetryableError(message, "image_service_error");
}

/** The image's file id: the upload it names, or a copy of the URL's body stored as a file of this task. */
async function sourceFile(image: { $file: string } | string, ctx: ProcessorContext): Promise<string> {
	if (typeof image !== "string") return image.$file;
	const maxBytes = settings(ctx.env).maxUploadBytes;
	try {
		const remote = await fetchRemote(image, { maxBytes, signal: ctx.signal });
		const ref = await ctx.files.put(limitBytes(remote.body, maxBytes), { content_type: remote.contentType });
		return ref.$file;
	} catch (e) {
		if (e instanceof RemoteFetchError) throw e.retryable ? new RetryableError(e.message, e.code) : new PermanentError(e.message, e.code);
		if (e instanceof FileTooLargeError) throw new PermanentError(`${image} is larger than ${maxBytes} bytes`, "input_too_large");
		throw e;
	}
}

export const imageResize = defineProcessor({
	input: ResizeInput,
	timeout_s: 120,
	async run(input, ctx) {
		ctx.progress(0, "fetching the image");
		const id = await sourceFile(input.image, ctx);

		ctx.progress(20, "reading the image header");
		const { head, stream } = await peek((await ctx.files.open(id)).body, 12);
		const sniffed = sniffFormat(head);
		if (!sniffed) {
			await stream.cancel();
			throw new PermanentError("The file is not a PNG, JPEG or WebP image", "invalid_image");
		}
		let info: ImageInfoResponse;
		try {
			info = await ctx.env.IMAGES.info(stream);
		} catch (e) {
			throw imagesFailure(e, "Reading the image failed");
		}
		if (!("width" in info)) throw new PermanentError(`Unsupported image format ${info.format}`, "invalid_image");
		if (info.width > MAX_IMAGE_SIDE || info.height > MAX_IMAGE_SIDE || info.width * info.height > MAX_IMAGE_PIXELS) {
			throw new PermanentError(
				`The image is ${info.width}×${info.height}; at most ${MAX_IMAGE_SIDE} px a side and ${MAX_IMAGE_PIXELS / 1e6} megapixels are resized`,
				"image_too_large",
			);
		}

		ctx.progress(40, `resizing ${info.width}×${info.height} ${sniffed}`);
		const contentType = FORMATS[input.format];
		let resized: ReadableStream<Uint8Array>;
		try {
			const result = await ctx.env.IMAGES.input((await ctx.files.open(id)).body)
				.transform({ width: input.width, height: input.height, fit: FIT[input.fit] })
				.output({ format: contentType, quality: input.quality });
			resized = result.image();
		} catch (e) {
			throw imagesFailure(e, "Resizing failed");
		}

		ctx.progress(80, "storing the result");
		// One copy goes to R2, the other is read for the result's dimensions: no full buffering.
		const [toStore, toMeasure] = resized.tee();
		const [ref, measured] = await Promise.all([
			ctx.files.put(toStore, { content_type: contentType }),
			ctx.env.IMAGES.info(toMeasure).catch((e: unknown) => {
				throw imagesFailure(e, "Reading the result failed");
			}),
		]);
		if (!("width" in measured)) throw new RetryableError("The resized image has no dimensions", "image_service_error");
		return { ...ref, width: measured.width, height: measured.height };
	},
});
