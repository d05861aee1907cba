/**
 * The README's code blocks as runnable examples (test/e2e/readme-examples.test.ts runs them).
 *
 * How an example says how it runs: by the words after the language on its opening fence, which
 * GitHub does not display (```` ```sh server ````).
 *
 * | fence                          | what the test does                                                                           |
 * | ------------------------------ | -------------------------------------------------------------------------------------------- |
 * | ```` ```sh ````                | runs the block with `bash -euo pipefail`; it must exit 0 (curl fails on an HTTP error)        |
 * | ```` ```sh server ````         | starts it in the background and waits for its port: the server later blocks talk to; the next `server` block stops it first |
 * | ```` ```sh background ````     | a helper kept running to the end (a webhook receiver, a model server, a pull worker), waited for on its port if it names one; `expect="TEXT"`: TEXT must appear in its output |
 * | ```` ```LANG file=NAME ````    | written to NAME in the clone before anything runs                                            |
 * | ```` ```sh skip="why" ````     | not run; listed with its reason                                                               |
 *
 * Other blocks (json, ts or js without `file=`, text) are documentation. `bash`/`shell` count as `sh`.
 * Every block runs in the clone's root; a server or helper's port is its `--port N` / `PORT=N`
 * (a server without one: npm run dev's 8787; a helper: the first `127.0.0.1:N` it names).
 */

export type Mode = "run" | "server" | "background" | "skip" | "file" | "doc";

export interface Example {
	/** 1-based line of the opening fence in the README. */
	line: number;
	lang: string;
	mode: Mode;
	code: string;
	/** `file=`: where the block is written. */
	file?: string;
	/** `expect=`: text a background process must print. */
	expect?: string;
	/** `skip=`: why it is not run. */
	skip?: string;
}

const SHELLS = new Set(["sh", "bash", "shell"]);
const ATTRIBUTES = new Set(["server", "background", "file", "expect", "skip"]);

/** `server expect="a b" file=x` → { server: "", expect: "a b", file: "x" }. */
function parseInfo(info: string, line: number): Record<string, string> {
	const attrs: Record<string, string> = {};
	const re = /([a-z]+)(?:=(?:"([^"]*)"|(\S+)))?/g;
	for (let m = re.exec(info); m; m = re.exec(info)) {
		const name = m[1] ?? "";
		if (!ATTRIBUTES.has(name))
			throw new Error(`README.md:${line}: unknown example attribute "${name}" (one of ${[...ATTRIBUTES].join(", ")})`);
		attrs[name] = m[2] ?? m[3] ?? "";
	}
	return attrs;
}

/** Every fenced code block of `markdown`, with how it runs. Throws on a fence it cannot read. */
export function parseExamples(markdown: string): Example[] {
	const lines = markdown.split("\n");
	const examples: Example[] = [];
	for (let i = 0; i < lines.length; i++) {
		const open = /^(\s*)(`{3,})([\w-]*)\s*(.*)$/.exec(lines[i] ?? "");
		if (!open) continue;
		const [, indent = "", fence = "```", lang = "", info = ""] = open;
		const start = i + 1;
		const body: string[] = [];
		for (i++; i < lines.length && !(lines[i] ?? "").startsWith(`${indent}${fence}`); i++) body.push((lines[i] ?? "").slice(indent.length));
		if (i >= lines.length) throw new Error(`README.md:${start}: code block never closed`);
		const attrs = parseInfo(info, start);
		const example: Example = { line: start, lang, mode: "doc", code: body.join("\n") + "\n" };
		if ("file" in attrs) {
			if (!attrs.file) throw new Error(`README.md:${start}: file= needs a name`);
			example.mode = "file";
			example.file = attrs.file;
		} else if (SHELLS.has(lang)) {
			const modes = (["server", "background", "skip"] as const).filter((m) => m in attrs);
			if (modes.length > 1) throw new Error(`README.md:${start}: one of server, background, skip`);
			example.mode = modes[0] === undefined ? "run" : modes[0];
			if ("skip" in attrs) {
				if (!attrs.skip) throw new Error(`README.md:${start}: skip= needs a reason`);
				example.skip = attrs.skip;
			}
			if ("expect" in attrs) {
				if (example.mode !== "background" && example.mode !== "server")
					throw new Error(`README.md:${start}: expect= is for server and background blocks`);
				example.expect = attrs.expect;
			}
		} else if (Object.keys(attrs).length > 0) {
			throw new Error(`README.md:${start}: attributes on a ${lang || "plain"} block that is not run`);
		}
		examples.push(example);
	}
	return examples;
}

/** The ports an example names: `127.0.0.1:N`, `localhost:N`, `--port N`, `PORT=N`. */
const PORT_PATTERNS = [/(?<=\b(?:127\.0\.0\.1|localhost):)(\d{2,5})\b/g, /(?<=--port[= ])(\d{2,5})\b/g, /(?<=\bPORT=)(\d{2,5})\b/g];

export function portsIn(code: string): number[] {
	const ports: number[] = [];
	for (const re of PORT_PATTERNS) for (const m of code.matchAll(re)) ports.push(Number(m[1]));
	return [...new Set(ports)];
}

/** `code` with each documented port replaced by its mapping (so examples never collide with a server already running here). */
export function mapPorts(code: string, map: ReadonlyMap<number, number>): string {
	let out = code;
	for (const re of PORT_PATTERNS) out = out.replace(re, (port) => String(map.get(Number(port)) ?? port));
	return out;
}
