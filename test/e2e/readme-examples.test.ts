/**
 * Every command and curl example in README.md, run as written, in order, against a fresh clone
 * and the local server its own examples start (`npm run dev`). So no example can rot, and an
 * example added later is run too: the blocks are read from the README itself. How a block says
 * how it runs (server, background helper, file, skip) is described in ./readme.ts.
 *
 * The fresh clone: the working tree's files that git would commit (tracked and untracked, not
 * ignored: no .dev.vars, no .wrangler state), plus a copy of node_modules so `npm install` runs
 * offline in seconds. Ports the README names (8787, 9000, …) are mapped to free ports, and PORT
 * is set to the 8787 mapping so a bare `npm run dev` uses it: the examples never collide with a
 * server another checkout runs on this machine (EDGETASK_URL points at it too, for clients that
 * read it). curl runs with `--fail-with-body` and a time
 * limit (from a .curlrc), so an HTTP error or a hang fails the example.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/devServer";
import { freshClone, sleep, tail } from "./helpers";
import { mapPorts, parseExamples, portsIn, type Example } from "./readme";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const README = readFileSync(join(root, "README.md"), "utf8");
const examples = parseExamples(README);
const BLOCK_TIMEOUT_MS = 90_000;
const READY_TIMEOUT_MS = 120_000;

interface Running {
	example: Example;
	child: ChildProcess;
	output(): string;
	exited(): boolean;
}

let clone = "";
let curlHome = "";
const ports = new Map<number, number>();
const servers: Running[] = [];
const background: Running[] = [];

function env(): NodeJS.ProcessEnv {
	return {
		...process.env,
		CLOUDFLARE_CF_FETCH_ENABLED: "false",
		WRANGLER_SEND_METRICS: "false",
		npm_config_offline: "true",
		npm_config_audit: "false",
		npm_config_fund: "false",
		CURL_HOME: curlHome,
		// Where examples find the server when they name none: npm run dev's port, clients' URL.
		PORT: String(ports.get(8787)),
		EDGETASK_URL: `http://127.0.0.1:${ports.get(8787)}`,
		// With pyenv on the machine, `python3` is the system one (where apt installs FastAPI).
		PYENV_VERSION: "system",
		NO_COLOR: "1",
		CI: "true",
	};
}

function start(example: Example): Running {
	const child = spawn("bash", ["-euo", "pipefail", "-c", mapPorts(example.code, ports)], {
		cwd: clone,
		env: env(),
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	let log = "";
	child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	return { example, child, output: () => log, exited: () => child.exitCode !== null || child.signalCode !== null };
}

async function stop(running: Running): Promise<void> {
	if (running.exited()) return;
	const gone = new Promise<void>((resolve) => running.child.once("exit", () => resolve()));
	const kill = (signal: NodeJS.Signals) => {
		try {
			// A negative pid is the block's process group; never 0 (that would be our own group).
			if (running.child.pid !== undefined) process.kill(-running.child.pid, signal);
		} catch {
			/* already gone */
		}
	};
	kill("SIGTERM");
	const timer = setTimeout(() => kill("SIGKILL"), 5000);
	await gone;
	clearTimeout(timer);
}

/** True once something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = connect(port, "127.0.0.1");
		socket.once("connect", () => (socket.destroy(), resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

/**
 * Where a server or helper listens: the port of its `--port N` / `PORT=N`; else a server is npm
 * run dev on its default (8787), a helper on the first `127.0.0.1:N` it names, or on none (a
 * client such as a pull worker: not waited for).
 */
function portOf(example: Example): number | null {
	const flag = /(?:--port[= ]|\bPORT=)(\d{2,5})\b/.exec(example.code)?.[1];
	const named = flag ? Number(flag) : example.mode === "server" ? 8787 : portsIn(example.code)[0];
	if (named === undefined) return null;
	const mapped = ports.get(named);
	if (mapped === undefined) throw new Error(`no mapping for port ${named}`);
	return mapped;
}

async function waitListening(running: Running): Promise<void> {
	const port = portOf(running.example);
	if (port === null) return;
	const deadline = Date.now() + READY_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (running.exited()) throw new Error(`README.md:${running.example.line} exited before listening:\n${tail(running.output())}`);
		if (await listening(port)) return;
		await sleep(200);
	}
	throw new Error(`README.md:${running.example.line} did not listen on ${port} in time:\n${tail(running.output())}`);
}

async function waitClosed(example: Example): Promise<void> {
	const port = portOf(example);
	for (let i = 0; port !== null && i < 100 && (await listening(port)); i++) await sleep(100);
}

function run(example: Example): Promise<{ code: number | null; output: string }> {
	const running = start(example);
	return new Promise((resolve) => {
		const timer = setTimeout(() => void stop(running), BLOCK_TIMEOUT_MS);
		running.child.once("exit", (code) => {
			clearTimeout(timer);
			resolve({ code, output: running.output() });
		});
	});
}

beforeAll(async () => {
	clone = freshClone("edgetask-readme");
	curlHome = join(clone, ".curl-home");
	mkdirSync(curlHome);
	writeFileSync(join(curlHome, ".curlrc"), "--fail-with-body\n--max-time 75\n");
	for (const example of examples) {
		if (example.mode === "run" || example.mode === "server" || example.mode === "background") {
			for (const port of [8787, ...portsIn(example.code)]) if (!ports.has(port)) ports.set(port, await freePort());
		}
		if (example.mode === "file" && example.file) writeFileSync(join(clone, example.file), example.code);
	}
	if (!ports.has(8787)) ports.set(8787, await freePort());
}, 120_000);

afterAll(async () => {
	await Promise.all([...servers, ...background].map(stop));
	if (clone) rmSync(clone, { recursive: true, force: true });
});

/**
 * Waits up to `ms` for every running helper's `expect=` text; with `assert`, fails for one still
 * missing. (Without, it only gives deliveries in flight their moment before a server is replaced.)
 */
async function expectations(ms: number, assert: boolean): Promise<void> {
	const deadline = Date.now() + ms;
	for (const helper of [...background, ...servers]) {
		const want = helper.example.expect;
		if (!want) continue;
		while (!helper.output().includes(want) && Date.now() < deadline) await sleep(100);
		if (assert) expect(helper.output(), `README.md:${helper.example.line} should print "${want}"`).toContain(want);
	}
}

describe("README examples", () => {
	it("are found, and each says how it runs", () => {
		const runnable = examples.filter((e) => e.mode === "run");
		const skipped = examples.filter((e) => e.mode === "skip");
		console.log(
			`README examples: ${runnable.length} run, ${examples.filter((e) => e.mode === "server").length} servers, ` +
				`${examples.filter((e) => e.mode === "background").length} helpers, ${examples.filter((e) => e.mode === "file").length} files, ` +
				`${skipped.length} skipped (${skipped.map((e) => `line ${e.line}: ${e.skip}`).join("; ")})`,
		);
		expect(runnable.length).toBeGreaterThan(0);
		expect(examples.some((e) => e.mode === "server")).toBe(true);
		// Every curl to the local server is in a block that runs.
		for (const e of examples.filter((x) => /(^|\s)curl\s[^\n]*(127\.0\.0\.1|localhost)/m.test(x.code)))
			expect(["run", "background", "server"], `README.md:${e.line}`).toContain(e.mode);
	});

	it("run as written, in order, against a fresh clone's own server", async () => {
		const results: string[] = [];
		for (const example of examples) {
			const where = `README.md:${example.line}`;
			if (example.mode === "server") {
				// One server at a time, as a reader runs them: the next one replaces it, once what the
				// helpers are waiting for from it (a webhook) has had its moment.
				await expectations(10_000, false);
				const replaced = servers.splice(0);
				await Promise.all(replaced.map(stop));
				// Its port must be free again, or the next server's wait would see the old one.
				for (const old of replaced) await waitClosed(old.example);
				const server = start(example);
				servers.push(server);
				await waitListening(server);
				results.push(`${where} server listening`);
			} else if (example.mode === "background") {
				const helper = start(example);
				background.push(helper);
				await waitListening(helper);
				results.push(`${where} helper listening`);
			} else if (example.mode === "run") {
				const { code, output } = await run(example);
				const server = servers[0]?.output() ?? "";
				expect(
					code,
					`${where} exited ${code}:\n${mapPorts(example.code, ports)}\n--- output\n${tail(output)}\n--- server\n${tail(server, 2000)}`,
				).toBe(0);
				results.push(`${where} ok`);
			}
		}
		// Helpers that promise output must have printed it by now (webhooks arrive off the request path).
		await expectations(10_000, true);
		console.log(results.join("\n"));
	}, 600_000);
});
