/**
 * `npm run dev`: the local server, open (no API key, any web origin) and ready for webhooks on a
 * fresh clone.
 *
 * - Port: `npm run dev -- --port 9000`, else `PORT=9000 npm run dev`, else 8787. (wrangler
 *   refuses a second `--port`, so the default cannot live in the npm script itself.)
 * - Webhooks: they are signed with the WEBHOOK_SECRET secret, which wrangler dev reads from
 *   `.dev.vars`. On the first run this makes one (a random `whsec_` key) and prints it, so a
 *   local receiver can verify signatures (README, "Webhooks").
 * - Everything else on the command line goes to `wrangler dev` unchanged.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEFAULT_PORT = "8787";

/** Takes `--NAME V` / `--NAME=V` out of `args` (the last one wins, as in wrangler). */
export function takeOption(args: string[], name: string): { value: string | undefined; rest: string[] } {
	let value: string | undefined;
	const rest: string[] = [];
	for (let i = 0; i < args.length; i++) {
		const arg = args[i] ?? "";
		if (arg === `--${name}`) value = args[++i];
		else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
		else rest.push(arg);
	}
	return { value, rest };
}

/** Makes sure `.dev.vars` has a WEBHOOK_SECRET; returns the secret when it was just made. */
export function ensureWebhookSecret(file: string): string | null {
	const current = existsSync(file) ? readFileSync(file, "utf8") : "";
	if (/^\s*WEBHOOK_SECRET\s*=/m.test(current)) return null;
	const secret = `whsec_${randomBytes(32).toString("base64")}`;
	const line = `# Signs local webhooks (made by npm run dev; any receiver verifying them needs it)\nWEBHOOK_SECRET=${secret}\n`;
	writeFileSync(file, current === "" || current.endsWith("\n") ? current + line : `${current}\n${line}`, { mode: 0o600 });
	return secret;
}

function main(): void {
	const portOption = takeOption(process.argv.slice(2), "port");
	const ipOption = takeOption(portOption.rest, "ip");
	const port = portOption.value ?? process.env.PORT ?? DEFAULT_PORT;
	const ip = ipOption.value ?? "127.0.0.1";
	if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
		console.error(`edgetask: not a port: ${JSON.stringify(port)} (use --port 9000 or PORT=9000)`);
		process.exit(2);
	}
	const devVars = join(root, ".dev.vars");
	const made = ensureWebhookSecret(devVars);
	console.log(
		"edgetask: local dev server runs OPEN (AUTH_MODE=open, no API key needed; CORS_ORIGINS=* lets pages on any origin call it); deployed, set API_KEYS",
	);
	if (made) console.log(`edgetask: made .dev.vars with a local webhook signing secret:\nWEBHOOK_SECRET=${made}`);
	else console.log("edgetask: webhooks are signed with WEBHOOK_SECRET from .dev.vars");

	const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
	const args = [wrangler, "dev", "--ip", ip, "--port", port, "--var", "AUTH_MODE:open", "--var", "CORS_ORIGINS:*", ...ipOption.rest];
	const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });
	// Stopping this process stops wrangler; it exits with wrangler.
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => child.kill(signal));
	child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
