/**
 * The image engines measured for `image.resize` (bench/engines.ts). The app uses the Images
 * binding; the WebAssembly engines live here only so the comparison can be run again.
 */
import { PhotonImage, resize as photonResize, SamplingFilter } from "@cf-wasm/photon/workerd";
import decodeJpeg, { init as initJpegDec } from "@jsquash/jpeg/decode";
import encodeJpeg, { init as initJpegEnc } from "@jsquash/jpeg/encode";
import decodePng, { init as initPngDec } from "@jsquash/png/decode";
import encodePng, { init as initPngEnc } from "@jsquash/png/encode";
import decodeWebp, { init as initWebpDec } from "@jsquash/webp/decode";
import encodeWebp, { init as initWebpEnc } from "@jsquash/webp/encode";
import resizeJsquash, { initResize } from "@jsquash/resize";
import jpegDecWasm from "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";
import jpegEncWasm from "@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm";
import pngWasm from "@jsquash/png/codec/pkg/squoosh_png_bg.wasm";
import webpDecWasm from "@jsquash/webp/codec/dec/webp_dec.wasm";
import webpEncWasm from "@jsquash/webp/codec/enc/webp_enc_simd.wasm";
import resizeWasm from "@jsquash/resize/lib/resize/pkg/squoosh_resize_bg.wasm";

interface Env {
	IMAGES: ImagesBinding;
}

// The Squoosh codecs build ImageData objects; workerd has no ImageData.
class PolyImageData {
	constructor(
		public data: Uint8ClampedArray,
		public width: number,
		public height: number,
	) {}
}
(globalThis as { ImageData?: unknown }).ImageData ??= PolyImageData;

let jsquashReady: Promise<unknown> | null = null;
function initJsquash() {
	jsquashReady ??= Promise.all([
		initJpegDec(jpegDecWasm),
		initJpegEnc(jpegEncWasm),
		initPngDec(pngWasm),
		initPngEnc(pngWasm),
		initWebpDec(webpDecWasm),
		initWebpEnc(webpEncWasm),
		initResize(resizeWasm),
	]);
	return jsquashReady;
}

export default {
	async fetch(request: Request, env: Env): Promise<Response> {
		const url = new URL(request.url);
		if (url.pathname === "/health") return new Response("ok");
		const width = Number(url.searchParams.get("w") ?? 256);
		const fmt = url.searchParams.get("fmt") ?? "jpeg";
		const input = url.searchParams.get("in") ?? "jpeg";
		try {
			if (url.pathname === "/images") {
				const out = await env.IMAGES.input(request.body as ReadableStream<Uint8Array>)
					.transform({ width, fit: "contain" })
					.output({ format: `image/${fmt}` as "image/jpeg", quality: 80 });
				return out.response();
			}
			const bytes = new Uint8Array(await request.arrayBuffer());
			if (url.pathname === "/photon") {
				const image = PhotonImage.new_from_byteslice(bytes);
				const height = Math.round((image.get_height() * width) / image.get_width());
				const resized = photonResize(image, width, height, SamplingFilter.Lanczos3);
				image.free();
				const encoded = fmt === "jpeg" ? resized.get_bytes_jpeg(80) : fmt === "png" ? resized.get_bytes() : resized.get_bytes_webp();
				resized.free();
				return new Response(encoded, { headers: { "content-type": `image/${fmt}` } });
			}
			if (url.pathname === "/jsquash") {
				await initJsquash();
				const decoded =
					input === "jpeg"
						? await decodeJpeg(bytes.buffer)
						: input === "png"
							? await decodePng(bytes.buffer)
							: await decodeWebp(bytes.buffer);
				const height = Math.round((decoded.height * width) / decoded.width);
				const resized = await resizeJsquash(decoded, { width, height, method: "lanczos3" });
				const encoded =
					fmt === "jpeg"
						? await encodeJpeg(resized, { quality: 80 })
						: fmt === "png"
							? await encodePng(resized)
							: await encodeWebp(resized, { quality: 80 });
				return new Response(encoded, { headers: { "content-type": `image/${fmt}` } });
			}
		} catch (e) {
			return new Response(String(e instanceof Error ? (e.stack ?? e.message) : e), { status: 500 });
		}
		return new Response("not found", { status: 404 });
	},
};
