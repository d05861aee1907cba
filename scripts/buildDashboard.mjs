/**
 * Builds the dashboard (dashboard/ → public/, which the Worker serves through its ASSETS
 * binding): bundles dashboard/app.ts with the client it is built on (clients/js/src) into one
 * script, and copies the page and its stylesheet. wrangler runs it before `dev` and `deploy`
 * (`[build]` in wrangler.toml); vitest.config.ts runs it before the worker tests. Plain
 * JavaScript, so any Node that runs wrangler runs it.
 *
 * Several `wrangler dev` may start at once (the end-to-end tests) while others serve the files:
 * each file is written beside its place and renamed over it, so a reader never sees half a file,
 * and a file whose bytes did not change is left alone, so running servers see no change at all.
 */
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "dashboard");
const out = join(root, "public");
mkdirSync(join(out, "dashboard"), { recursive: true });
// Outside public/, which running servers watch; on the same disk, so a rename moves a file into place.
mkdirSync(join(root, ".wrangler"), { recursive: true });
const scratch = mkdtempSync(join(root, ".wrangler", "dashboard-build-"));
try {
	await build({
		entryPoints: [join(source, "app.ts")],
		outfile: join(scratch, "app.js"),
		bundle: true,
		format: "esm",
		platform: "browser",
		target: "es2022",
		minify: true,
		sourcemap: "linked",
		logLevel: "warning",
	});
	copyFileSync(join(source, "index.html"), join(scratch, "index.html"));
	copyFileSync(join(source, "style.css"), join(scratch, "style.css"));
	const place = (name, target) => {
		const fresh = join(scratch, name);
		if (existsSync(target) && readFileSync(target).equals(readFileSync(fresh))) return;
		renameSync(fresh, target);
	};
	place("app.js", join(out, "dashboard", "app.js"));
	place("app.js.map", join(out, "dashboard", "app.js.map"));
	place("style.css", join(out, "dashboard", "style.css"));
	place("index.html", join(out, "index.html"));
} finally {
	rmSync(scratch, { recursive: true, force: true });
}
