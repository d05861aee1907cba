/**
 * Starts `wrangler dev` as a child process on a free loopback port and waits until it answers.
 * Used by the end-to-end tests and the benchmark, so both exercise exactly what
 * `npm run dev` serves. Runs under the Node that runs the caller (`process.execPath`), never
 * the `node` on PATH: the machine's Node is too old for wrangler.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface DevServer {
	url: string;
	port: number;
	/** wrangler's DevTools inspector for the worker (Chrome DevTools protocol over WebSocket at /ws). */
	inspectorPort: number;
	child: ChildProcess;
	/** Everything wrangler printed so far (stdout and stderr). */
	output(): string;
	stop(): Promise<void>;
}

export interface DevServerOptions {
	/** Extra `[vars]` overrides, e.g. `{ ENABLE_FAULT_PROCESSORS: "true" }`. */
	vars?: Record<string, string>;
	/** Directory for persisted local state (Durable Objects, alarms); a restart with the same one keeps it. */
	persistTo?: string;
	/** Port to listen on; default: a free one. */
	port?: number;
	/** Wrangler config file; default: the project's wrangler.toml. */
	config?: string;
	readyTimeoutMs?: number;
	/**
	 * Wrangler's local observability (on by default in `wrangler dev`) records a trace of every
	 * invocation in a SQLite object of its own: three synced disk writes per edgetask task (fetch,
	 * queue, object calls) and one per floor request. It is a dev-tool feature, not part of the
	 * app or of the deployed runtime, so tests and benchmarks run without it unless asked.
	 */
	observability?: boolean;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.on("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
		});
	});
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
	const port = options.port ?? (await freePort());
	const inspectorPort = await freePort();
	const args = [
		join(root, "node_modules/wrangler/bin/wrangler.js"),
		"dev",
		"--ip",
		"127.0.0.1",
		"--port",
		String(port),
		"--inspector-port",
		String(inspectorPort),
		"--show-interactive-dev-session=false",
		"--config",
		options.config ?? join(root, "wrangler.toml"),
	];
	if (options.persistTo) args.push("--persist-to", options.persistTo);
	// Like `npm run dev`, the local server runs open (and callable from pages on any origin) unless
	// the caller sets API_KEYS / AUTH_MODE / CORS_ORIGINS.
	const vars = { AUTH_MODE: "open", CORS_ORIGINS: "*", ...options.vars };
	for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);

	const child = spawn(process.execPath, args, {
		cwd: root,
		env: {
			...process.env,
			CLOUDFLARE_CF_FETCH_ENABLED: "false",
			WRANGLER_SEND_METRICS: "false",
			X_LOCAL_OBSERVABILITY: options.observability ? "true" : "false",
			NO_COLOR: "1",
			CI: "true",
		},
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	let log = "";
	child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	const url = `http://127.0.0.1:${port}`;

	const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
	const stop = async () => {
		if (child.exitCode !== null || child.signalCode !== null) return;
		// The child's process group (it was started detached). Never `-0`: that is our own group.
		const kill = (signal: NodeJS.Signals) => {
			if (child.pid === undefined) child.kill(signal);
			else process.kill(-child.pid, signal);
		};
		try {
			kill("SIGTERM");
		} catch {
			child.kill("SIGTERM");
		}
		const timer = setTimeout(() => {
			try {
				kill("SIGKILL");
			} catch {
				/* already gone */
			}
		}, 5000);
		await exited;
		clearTimeout(timer);
	};

	const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${log}`);
		if (log.includes("Ready on")) {
			try {
				const res = await fetch(`${url}/health`);
				if (res.ok) return { url, port, inspectorPort, child, output: () => log, stop };
			} catch {
				/* not listening yet */
			}
		}
		await new Promise((r) => setTimeout(r, 100));
	}
	await stop();
	throw new Error(`wrangler dev did not become ready in time:\n${log}`);
}
