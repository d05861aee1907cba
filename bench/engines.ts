/**
 * The two ways to resize images in a Worker, measured on the same images on the local runtime:
 * `npm run bench:engines [-- --n 20] [-- --no-large] [-- --json FILE]`.
 *
 * Starts bench/engines/worker.ts under `wrangler dev` (scripts/devServer.ts) and resizes, through
 * real HTTP, a fixed 1920×1080 photo-like image (bench/files.ts `benchJpeg`, also re-encoded as
 * PNG and WebP) to 256 px, and a 640×480 PNG to 160 px, with:
 *   images   the Cloudflare Images binding (wrangler runs it locally with sharp, in its Node process)
 *   photon   @cf-wasm/photon (WebAssembly in the Worker)
 *   jsquash  the @jsquash codecs and resize (WebAssembly in the Worker)
 * n sequential requests, then n at concurrency 4: p50 latency, resizes/s, and CPU per resize of
 * the workerd runtime (where WebAssembly runs, on the isolate's one thread) and of wrangler's Node
 * process (where the local Images binding runs). Then, unless --no-large, one JPEG each of 12, 24,
 * 48, 100 and 192 megapixels through every engine: time, outcome, workerd RSS after.
 * Bounded: every request has a timeout; the server is stopped at the end.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { startDevServer } from "../scripts/devServer.ts";
import { benchJpeg } from "./files.ts";
import { cpuMsByRole, fmt, sampleTree, summarize, workerdRssKb } from "./lib.ts";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name: string) => {
	const i = args.indexOf(name);
	return i === -1 ? undefined : args[i + 1];
};
const N = Number(arg("--n") ?? 20);
const LARGE = !args.includes("--no-large");
const JSON_OUT = arg("--json");
const ENGINES = ["images", "photon", "jsquash"] as const;
const TIMEOUT_MS = 120_000;

async function post(base: string, path: string, body: Uint8Array): Promise<{ ms: number; status: number; bytes: number; text: string }> {
	const t = performance.now();
	const res = await fetch(`${base}${path}`, { method: "POST", body, signal: AbortSignal.timeout(TIMEOUT_MS) });
	const out = new Uint8Array(await res.arrayBuffer());
	return {
		ms: performance.now() - t,
		status: res.status,
		bytes: out.byteLength,
		text: res.ok ? "" : new TextDecoder().decode(out).split("\n")[0]!.slice(0, 120),
	};
}

async function main() {
	const server = await startDevServer({ config: join(here, "engines", "wrangler.toml"), readyTimeoutMs: 120_000 });
	const rows: string[] = [];
	const large: string[] = [];
	const results: unknown[] = [];
	try {
		const jpeg = await benchJpeg();
		const raw = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
		const asFormat = (f: "png" | "webp") =>
			sharp(raw.data, { raw: { width: raw.info.width, height: raw.info.height, channels: raw.info.channels } })
				.toFormat(f, f === "webp" ? { quality: 85 } : {})
				.toBuffer();
		const vga = await sharp(jpeg).resize(640, 480, { fit: "fill" }).png().toBuffer();
		const cases = [
			{ name: "1920×1080 JPEG → 256 px JPEG", body: jpeg, input: "jpeg", fmt: "jpeg", w: 256 },
			{ name: "1920×1080 PNG → 256 px PNG", body: await asFormat("png"), input: "png", fmt: "png", w: 256 },
			{ name: "1920×1080 WebP → 256 px WebP", body: await asFormat("webp"), input: "webp", fmt: "webp", w: 256 },
			{ name: "640×480 PNG → 160 px PNG", body: vga, input: "png", fmt: "png", w: 160 },
		];
		for (const c of cases) {
			for (const engine of ENGINES) {
				const path = `/${engine}?w=${c.w}&fmt=${c.fmt}&in=${c.input}`;
				const body = new Uint8Array(c.body);
				const warm = await post(server.url, path, body);
				if (warm.status !== 200) throw new Error(`${engine} ${c.name}: ${warm.status} ${warm.text}`);
				const measure = async (conc: number) => {
					const before = sampleTree(server.child.pid ?? 0, server.port);
					const times: number[] = [];
					let next = 0;
					const t0 = performance.now();
					await Promise.all(
						Array.from({ length: conc }, async () => {
							while (next < N) {
								next++;
								const r = await post(server.url, path, body);
								if (r.status !== 200) throw new Error(`${engine} ${c.name}: ${r.status} ${r.text}`);
								times.push(r.ms);
							}
						}),
					);
					const wallS = (performance.now() - t0) / 1000;
					const cpu = cpuMsByRole(before, sampleTree(server.child.pid ?? 0, server.port));
					return {
						perS: N / wallS,
						ms: summarize(times),
						workerdCpuMs: (cpu["workerd-runtime"] ?? 0) / N,
						nodeCpuMs: (cpu.wrangler ?? 0) / N,
					};
				};
				const c1 = await measure(1);
				const c4 = await measure(4);
				results.push({ case: c.name, engine, output: warm.bytes, c1, c4 });
				rows.push(
					`| ${c.name} | ${engine} | ${fmt(c1.ms.p50)} | ${fmt(c1.perS)} | ${fmt(c4.perS)} | ${fmt(c1.workerdCpuMs)} | ${fmt(c1.nodeCpuMs)} | ${warm.bytes} |`,
				);
				console.log(rows.at(-1));
			}
		}
		if (LARGE) {
			for (const [w, h] of [
				[4000, 3000],
				[6000, 4000],
				[8000, 6000],
				[10000, 10000],
				[16000, 12000],
			] as const) {
				const big = new Uint8Array(await sharp(jpeg).resize(w, h, { fit: "fill" }).jpeg({ quality: 85 }).toBuffer());
				for (const engine of ENGINES) {
					const r = await post(server.url, `/${engine}?w=256&fmt=jpeg&in=jpeg`, big).catch((e: unknown) => ({
						ms: NaN,
						status: 0,
						bytes: 0,
						text: String(e),
					}));
					const rss = workerdRssKb(sampleTree(server.child.pid ?? 0, server.port)) / 1024;
					results.push({ large: `${w}×${h}`, engine, status: r.status, ms: r.ms, workerdRssMb: rss, error: r.text });
					large.push(
						`| ${w}×${h} (${fmt((w * h) / 1e6, 0)} MP, ${fmt(big.byteLength / 1048576)} MiB) | ${engine} | ${r.status === 200 ? `ok, ${fmt(r.ms, 0)} ms` : `${r.status}: ${r.text}`} | ${fmt(rss, 0)} |`,
					);
					console.log(large.at(-1));
				}
			}
		}
	} finally {
		await server.stop();
	}
	console.log(`\n## image engines, ${new Date().toISOString()}, n=${N}\n`);
	console.log(
		"| image | engine | c1 p50 ms | resizes/s c1 | resizes/s c4 | workerd CPU ms / resize | wrangler (Node) CPU ms / resize | output bytes |",
	);
	console.log("|---|---|---:|---:|---:|---:|---:|---:|");
	console.log(rows.join("\n"));
	if (large.length) {
		console.log("\n| JPEG in | engine | outcome | workerd RSS after, MB |\n|---|---|---|---:|");
		console.log(large.join("\n"));
	}
	if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 2));
}

main().then(
	() => process.exit(0),
	(e: unknown) => {
		console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
		process.exit(1);
	},
);
