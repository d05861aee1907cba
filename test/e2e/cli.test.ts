/**
 * The CLI (`npx edgetask …`) end to end against a real `wrangler dev` with API keys: the built
 * bin, run by the oldest Node on the machine (20 when present: no WebSocket, so it long-polls),
 * in a real pseudo-terminal (util-linux `script`), where it draws a live progress bar, and piped,
 * where it prints one plain line per event; with every exit code.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, tempDir, uniqueId, type DevServer } from "./helpers";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = join(root, "clients/js/dist/cli.js");
const KEY = "cli-test-key";

/** The oldest Node on PATH outside node_modules (the machine's), else the one running the tests. */
function oldestNode(): { path: string; version: string } {
	const found: { path: string; version: string; major: number }[] = [];
	for (const dir of (process.env.PATH ?? "").split(delimiter)) {
		if (dir.includes("node_modules")) continue;
		const path = join(dir, "node");
		if (!existsSync(path)) continue;
		const version = spawnSync(path, ["--version"], { encoding: "utf8" }).stdout.trim();
		const major = Number(/^v(\d+)/.exec(version)?.[1]);
		if (major >= 20) found.push({ path, version, major });
	}
	found.sort((a, b) => a.major - b.major);
	return found[0] ?? { path: process.execPath, version: process.version };
}

const NODE = oldestNode();
let server: DevServer;
let dir: { path: string; remove(): Promise<void> };

interface Result {
	code: number | null;
	stdout: string;
	stderr: string;
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
	return { ...process.env, EDGETASK_URL: server.url, EDGETASK_API_KEY: KEY, NO_COLOR: "1", ...extra };
}

/** Runs the CLI with pipes for stdin, stdout and stderr. */
function cli(args: string[], options: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {}): Promise<Result> {
	return new Promise((resolve, reject) => {
		const child = spawn(NODE.path, [BIN, ...args], { env: env(options.env), stdio: ["pipe", "pipe", "pipe"] });
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
		child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			reject(new Error(`edgetask ${args.join(" ")} did not exit within ${options.timeoutMs ?? 45_000} ms; stderr: ${stderr}`));
		}, options.timeoutMs ?? 45_000);
		child.on("error", reject);
		child.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
		child.stdin.end(options.stdin ?? "");
	});
}

function shellQuote(arg: string): string {
	return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Runs the CLI in a pseudo-terminal (stdout and stderr both the terminal); returns everything it drew. */
function cliInTerminal(args: string[]): Promise<{ code: number | null; screen: string }> {
	const command = [NODE.path, BIN, ...args].map(shellQuote).join(" ");
	return new Promise((resolve, reject) => {
		// util-linux script: -q quiet, -e exit with the command's code, -f flush as it goes; the log goes to /dev/null.
		const child = spawn("script", ["-qefc", `stty cols 120 rows 40; exec ${command}`, "/dev/null"], {
			env: env({ TERM: "xterm-256color" }),
			stdio: ["pipe", "pipe", "pipe"],
		});
		let screen = "";
		child.stdout.on("data", (c: Buffer) => (screen += c.toString()));
		child.stderr.on("data", (c: Buffer) => (screen += c.toString()));
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			reject(new Error(`edgetask in a terminal did not exit; screen: ${JSON.stringify(screen)}`));
		}, 45_000);
		child.on("error", reject);
		child.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, screen });
		});
	});
}

beforeAll(async () => {
	// Test what ships: the bin as `npm install` builds it, from the current source.
	const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, encoding: "utf8" });
	expect(build.status, build.stderr).toBe(0);
	dir = await tempDir("cli-e2e");
	server = await startDevServer({ persistTo: dir.path, vars: { API_KEYS: KEY, ENABLE_FAULT_PROCESSORS: "true" } });
	console.log(`CLI under ${NODE.version} (${NODE.path}); bin ${BIN}`);
	const warm = await cli(["run", "echo", "--input", '"warm-up"']);
	expect(warm.code, warm.stderr).toBe(0);
});

afterAll(async () => {
	await server?.stop();
	await dir?.remove();
});

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[/;

describe("edgetask run", () => {
	it("piped: prints the output as JSON on stdout and one plain line per event on stderr", async () => {
		const { code, stdout, stderr } = await cli(["run", "sleep", "--input", '{"ms":2500}']);
		expect(code, stderr).toBe(0);
		expect(JSON.parse(stdout)).toEqual({ slept_ms: 2500 });
		expect(stderr).not.toMatch(ANSI);
		const lines = stderr.trim().split("\n");
		expect(lines.length).toBeGreaterThanOrEqual(3);
		// Each line: elapsed, task id, what happened, percent once there is progress.
		for (const line of lines) expect(line).toMatch(/^\s*\d+\.\ds [0-9a-f-]{36} (#\d+ )?(queued|running|progress|succeeded|snapshot)\b/);
		expect(lines.some((l) => /running \d+%/.test(l))).toBe(true);
		expect(lines.at(-1)).toMatch(/succeeded 100%$/);
	});

	it("in a terminal: draws a live progress bar with percent and elapsed time, then the output", async () => {
		const { code, screen } = await cliInTerminal(["run", "sleep", "--input", '{"ms":3000}']);
		expect(code, screen).toBe(0);
		// The bar is redrawn in place (cursor control), several times, with percent and elapsed time.
		expect(screen).toMatch(ANSI);
		const frames = screen.match(/[█░]{30} \d+% \| \d+s \| \w+/g) ?? [];
		expect(frames.length, JSON.stringify(screen)).toBeGreaterThanOrEqual(3);
		expect(new Set(frames.map((f) => /(\d+)%/.exec(f)?.[1])).size).toBeGreaterThanOrEqual(3);
		expect(frames.at(-1)).toMatch(/█{30} 100% \| \ds \| succeeded/);
		expect(screen).toContain('"slept_ms": 3000');
	});

	it("writes the output to a file with -o (a file output as its bytes) and reads the input from a file or stdin", async () => {
		const out = join(dir.path, "out.json");
		const fromStdin = await cli(["run", "echo", "--input-file", "-", "-o", out], { stdin: '{"from":"stdin"}' });
		expect(fromStdin.code, fromStdin.stderr).toBe(0);
		expect(fromStdin.stdout).toBe("");
		expect(JSON.parse(await readFile(out, "utf8"))).toEqual({ from: "stdin" });
		const fromFile = await cli(["run", "echo", "--input-file", out]);
		expect(JSON.parse(fromFile.stdout)).toEqual({ from: "stdin" });
		// A file output (emit: byte i is i % 251) is written as its bytes.
		const bin = join(dir.path, "out.bin");
		const fileOut = await cli(["run", "emit", "--input", '{"file_bytes":4000}', "-o", bin]);
		expect(fileOut.code, fileOut.stderr).toBe(0);
		const bytes = new Uint8Array(await readFile(bin));
		expect(bytes.length).toBe(4000);
		expect(bytes.every((b, i) => b === i % 251)).toBe(true);
	});

	it("exit codes: 1 failed, 3 timed out (server deadline or --wait), 4 canceled, 2 usage", async () => {
		const failed = await cli(["run", "fail", "--input", '{"message":"broken","permanent":true}']);
		expect(failed.code).toBe(1);
		expect(failed.stderr).toMatch(/failed: processor_error: broken/);
		expect(failed.stdout).toBe("");

		const deadline = await cli(["run", "hang", "--timeout", "1"]);
		expect(deadline.code, deadline.stderr).toBe(3);
		expect(deadline.stderr).toMatch(/timed_out/);

		const id = uniqueId("cli-wait");
		const impatient = await cli(["run", "sleep", "--input", '{"ms":20000}', "--id", id, "--wait", "1"]);
		expect(impatient.code, impatient.stderr).toBe(3);
		expect(impatient.stderr).toContain(`edgetask watch ${id}`);

		// Watched by one CLI, canceled by another.
		const watching = cli(["watch", id]);
		const canceled = await cli(["cancel", id]);
		expect(canceled.code, canceled.stderr).toBe(0);
		expect(JSON.parse(canceled.stdout).status).toBe("canceled");
		const watched = await watching;
		expect(watched.code, watched.stderr).toBe(4);

		for (const args of [
			["run"],
			["run", "sleep", "--input", "{nope"],
			["run", "echo", "--input", "1", "--input-file", "x"],
			["get"],
			["nope"],
			["run", "sleep", "--wait", "soon"],
		]) {
			const usage = await cli(args);
			expect(usage.code, `${args.join(" ")}: ${usage.stderr}`).toBe(2);
			expect(usage.stderr).toMatch(/error/);
		}
	});

	it("Ctrl-C cancels the task it runs (exit 4)", async () => {
		const id = uniqueId("cli-sigint");
		const child = spawn(NODE.path, [BIN, "run", "sleep", "--input", '{"ms":20000}', "--id", id], {
			env: env(),
			stdio: ["ignore", "pipe", "pipe"],
		});
		let stderr = "";
		const sawRunning = new Promise<void>((resolve) =>
			child.stderr.on("data", (c: Buffer) => {
				stderr += c.toString();
				if (/running/.test(stderr)) resolve();
			}),
		);
		await sawRunning;
		child.kill("SIGINT");
		const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
		expect(code, stderr).toBe(4);
		const { stdout } = await cli(["get", id]);
		expect(JSON.parse(stdout).status).toBe("canceled");
	});
});

describe("the other commands", () => {
	it("submit, get --wait, watch, health; --url and --key override the environment", async () => {
		const submitted = await cli(["submit", "sleep", "--input", '{"ms":500}', "--priority", "high"]);
		expect(submitted.code, submitted.stderr).toBe(0);
		const task = JSON.parse(submitted.stdout);
		expect(task.status).toBe("queued");
		expect(task.priority).toBe("high");
		const got = await cli(["get", task.id, "--wait", "10"]);
		expect(JSON.parse(got.stdout).status).toBe("succeeded");
		const watched = await cli(["watch", task.urls.get]);
		expect(watched.code).toBe(0);
		expect(JSON.parse(watched.stdout)).toEqual({ slept_ms: 500 });
		const health = await cli(["health"]);
		expect(JSON.parse(health.stdout).queue_size).toBeTypeOf("number");

		const wrongKey = await cli(["get", task.id], { env: { EDGETASK_API_KEY: "wrong" } });
		expect(wrongKey.code).toBe(1);
		expect(wrongKey.stderr).toMatch(/401 unauthorized/);
		const flagKey = await cli(["get", task.id, "--key", KEY], { env: { EDGETASK_API_KEY: "wrong" } });
		expect(flagKey.code, flagKey.stderr).toBe(0);
		const flagUrl = await cli(["--url", "http://127.0.0.1:9", "health"]);
		expect(flagUrl.code).toBe(1);
		expect(flagUrl.stderr).toMatch(/ECONNREFUSED|fetch failed/);
		const refused = await cli(["submit", "no-such-type"]);
		expect(refused.code).toBe(1);
		expect(refused.stderr).toMatch(/422 unknown_type/);
	});

	it("--help works on every command", async () => {
		for (const command of ["run", "submit", "get", "watch", "cancel", "health"]) {
			const { code, stdout } = await cli([command, "--help"]);
			expect(code).toBe(0);
			expect(stdout).toContain(`Usage: edgetask ${command}`);
		}
		const top = await cli(["--help"]);
		expect(top.code).toBe(0);
		expect(top.stdout).toMatch(/EDGETASK_URL/);
		expect(top.stdout).toMatch(/EDGETASK_API_KEY/);
	});
});
