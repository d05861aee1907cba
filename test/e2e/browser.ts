/**
 * A real headless Chromium (Debian's, driven by playwright-core) and tiny static sites on their
 * own origins, for tests of what a browser does: CORS, EventSource, WebSocket, offline pages.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Starts Chromium; fails with how to install it when it is missing (`.ci/run` installs it). */
export async function launchBrowser(): Promise<Browser> {
	if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
	// Root (CI) cannot use Chromium's sandbox.
	return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** Builds clients/js/dist (the browser bundle of the client) from the current source. */
export function buildClient(): void {
	const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, encoding: "utf8" });
	if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
}

export interface Site {
	origin: string;
	close(): Promise<void>;
}

/**
 * Serves `pages` (path → HTML) and the client bundle at `/client.js` from 127.0.0.1 on a free
 * port: a web app on an origin of its own.
 */
export async function serveSite(pages: Record<string, string>): Promise<Site> {
	const server: Server = createServer((req, res) => {
		const path = new URL(req.url ?? "/", "http://x").pathname;
		if (path === "/client.js") {
			res.writeHead(200, { "content-type": "text/javascript" });
			res.end(readFileSync(join(root, "clients/js/dist/client.js")));
			return;
		}
		const page = pages[path];
		if (page === undefined) {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
		res.end(page);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		origin: `http://127.0.0.1:${port}`,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
