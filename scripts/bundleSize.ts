/**
 * `npm run size`: builds the Worker as `wrangler deploy` would (`--dry-run`, nothing uploaded)
 * and reports what would be uploaded: the bundle's size, raw and gzip (the measure Cloudflare's
 * limit uses: 3 MB on Workers Free, 10 MB on Paid), and the static assets beside it. Fails past
 * the Paid limit, warns past the Free one. CI prints it on every run (.ci/run).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const FREE_LIMIT = 3 * 1024 * 1024;
const PAID_LIMIT = 10 * 1024 * 1024;

function files(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

const out = mkdtempSync(join(tmpdir(), "edgetask-size-"));
try {
	const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
	const run = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", out], {
		cwd: root,
		encoding: "utf8",
		env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
	});
	if (run.status !== 0) {
		console.error(run.stdout, run.stderr);
		process.exit(run.status ?? 1);
	}
	const bundle = files(out).filter((f) => !f.endsWith(".map") && !f.endsWith(".md"));
	let raw = 0;
	let gzip = 0;
	console.log("Worker bundle (wrangler deploy --dry-run):");
	for (const file of bundle) {
		const bytes = readFileSync(file);
		const zipped = gzipSync(bytes, { level: 9 }).length;
		raw += bytes.length;
		gzip += zipped;
		console.log(`  ${relative(out, file)}: ${kib(bytes.length)} (gzip ${kib(zipped)})`);
	}
	console.log(`  total: ${kib(raw)}, gzip ${kib(gzip)} (limit: ${kib(FREE_LIMIT)} on Workers Free, ${kib(PAID_LIMIT)} on Paid)`);
	const reported = /Total Upload:.*$/m.exec(run.stdout)?.[0];
	if (reported) console.log(`  wrangler: ${reported}`);

	const assets = /^directory\s*=\s*"([^"]+)"/m.exec(readFileSync(join(root, "wrangler.toml"), "utf8"))?.[1];
	if (assets && existsSync(join(root, assets))) {
		const list = files(join(root, assets));
		const total = list.reduce((n, f) => n + statSync(f).size, 0);
		console.log(`Static assets (${assets}, served by the assets binding, not part of the bundle): ${list.length} files, ${kib(total)}`);
	}
	if (gzip > PAID_LIMIT) {
		console.error(`The bundle (gzip ${kib(gzip)}) is over the Workers Paid limit of ${kib(PAID_LIMIT)}`);
		process.exit(1);
	}
	if (gzip > FREE_LIMIT) console.warn(`Note: over the Workers Free limit of ${kib(FREE_LIMIT)}`);
} finally {
	rmSync(out, { recursive: true, force: true });
}
