#!/usr/bin/env node
/**
 * `edgetask`: the command line of an edgetask server, built on the client (`edgetask/client`).
 * Results go to stdout as JSON; progress, events and errors to stderr. Exit codes: 0 succeeded,
 * 1 failed (or any other error), 2 usage, 3 timed out, 4 canceled.
 */
import { readFile, writeFile } from "node:fs/promises";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
// The untyped core: the CLI takes task types as strings from the command line, and stays free of
// the server's types (which need the Workers runtime's; see index.ts).
import { createClient, type Client, type Transport, type WaitOptions } from "../src/client";
import { HttpError, TaskCanceledError, TaskFailedError, TaskTimeoutError } from "../src/errors";
import { isFileRef, type SubmitFields, type Task } from "../src/types";
import { createDisplay } from "./display";
import { version } from "../../../package.json";

const EXIT = { succeeded: 0, failed: 1, usage: 2, timedOut: 3, canceled: 4 } as const;

/** A usage mistake the parser could not see (bad JSON, two inputs): exit 2. */
class UsageError extends Error {}

interface GlobalOptions {
	url: string;
	key?: string;
	transport: Transport;
}

interface InputOptions {
	input?: string;
	inputFile?: string;
}

interface TaskOptions extends InputOptions {
	wait?: number;
	id?: string;
	priority?: SubmitFields["priority"];
	timeout?: number;
	ttl?: number;
	output?: string;
}

function seconds(value: string): number {
	const n = Number(value);
	if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number of seconds ≥ 0");
	return n;
}

async function readInput(options: InputOptions): Promise<unknown> {
	if (options.input !== undefined && options.inputFile !== undefined) throw new UsageError("give --input or --input-file, not both");
	let text: string | undefined = options.input;
	let from = "--input";
	if (options.inputFile !== undefined) {
		from = options.inputFile;
		text =
			options.inputFile === "-"
				? await readStdin()
				: await readFile(options.inputFile, "utf8").catch((e: Error) => {
						throw new UsageError(`cannot read ${options.inputFile}: ${e.message}`);
					});
	}
	if (text === undefined) return null;
	try {
		return JSON.parse(text);
	} catch (e) {
		throw new UsageError(`${from} is not valid JSON: ${(e as Error).message}`);
	}
}

async function readStdin(): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString("utf8");
}

function print(value: unknown): void {
	process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function submitFields(options: TaskOptions): SubmitFields {
	const fields: SubmitFields = {};
	if (options.id !== undefined) fields.id = options.id;
	if (options.priority !== undefined) fields.priority = options.priority;
	if (options.timeout !== undefined) fields.timeout_s = options.timeout;
	if (options.ttl !== undefined) fields.ttl_s = options.ttl;
	return fields;
}

/**
 * Writes a task's output: as JSON on stdout, or to the `-o` file — the file's own bytes when the
 * output is a file (`{"$file": …}`, e.g. an image), else the JSON.
 */
async function emitOutput(client: Client, output: unknown, file: string | undefined): Promise<void> {
	if (file === undefined) return print(output);
	if (isFileRef(output)) {
		const res = await client.files.get(output.$file);
		await writeFile(file, new Uint8Array(await res.arrayBuffer()));
	} else {
		await writeFile(file, `${JSON.stringify(output, null, 2)}\n`);
	}
	process.stderr.write(`wrote ${file}\n`);
}

/** Ctrl-C while following a task: for `run`, the task is ours and is canceled; `watch` only stops watching. */
function interruptSignal(): AbortSignal {
	const controller = new AbortController();
	process.once("SIGINT", () => controller.abort(new TaskInterrupted()));
	return controller.signal;
}

class TaskInterrupted extends Error {}

/**
 * Follows a task with the live display; `start` resolves with the task's output, or throws
 * TaskFailedError / TaskTimeoutError. Returns the exit code the task's end stands for.
 */
async function follow(client: Client, start: (hooks: WaitOptions) => Promise<unknown>, file: string | undefined): Promise<number> {
	const display = createDisplay(process.stderr);
	let current: Task | null = null;
	try {
		const output = await start({
			onEvent: (event) => {
				if (event.type === "snapshot") current = { ...(current ?? {}), ...(event.data as Task) };
				else if (current) current = { ...current, ...event.data };
				display.event(event, current);
			},
			onProgress: (progress, task) => display.progress(progress, task),
		});
		display.stop();
		await emitOutput(client, output, file);
		return EXIT.succeeded;
	} catch (e) {
		display.stop();
		if (e instanceof TaskFailedError) return reportEnd(e.task);
		if (e instanceof TaskTimeoutError) {
			process.stderr.write(
				`timed out: task ${e.taskId} did not end within ${e.timeoutMs / 1000} s; it goes on: edgetask watch ${e.taskId}\n`,
			);
			return EXIT.timedOut;
		}
		if (e instanceof TaskInterrupted) {
			process.stderr.write("interrupted\n");
			return EXIT.canceled;
		}
		throw e;
	}
}

function reportEnd(task: Task): number {
	const why = task.error ? `: ${task.error.code}: ${task.error.message}` : "";
	process.stderr.write(`task ${task.id} ${task.status}${why}\n`);
	if (task.status === "canceled") return EXIT.canceled;
	if (task.status === "timed_out") return EXIT.timedOut;
	return EXIT.failed;
}

function buildProgram(run: (code: number) => void): Command {
	const program = new Command("edgetask")
		.description("Submit, run and watch tasks on an edgetask server.")
		.addOption(new Option("--url <url>", "the server's base URL").env("EDGETASK_URL").default("http://127.0.0.1:8787"))
		.addOption(new Option("--key <key>", "API key (sent as Authorization: Bearer)").env("EDGETASK_API_KEY"))
		.addOption(
			new Option("--transport <transport>", "how to follow a task: a WebSocket where the platform has one, else long-polling")
				.choices(["auto", "websocket", "sse", "poll"])
				.default("auto"),
		)
		.version(version)
		.showHelpAfterError()
		.exitOverride();

	const clientOf = (command: Command): Client => {
		const options = command.optsWithGlobals<GlobalOptions>();
		return createClient({ baseUrl: options.url, apiKey: options.key, transport: options.transport });
	};
	const taskOptions = (command: Command) =>
		command
			.option("--input <json>", "the task's input, as JSON")
			.option("--input-file <file>", "read the input JSON from a file (- for stdin)")
			.option("--id <id>", "your id for the task (resubmitting the same id and input returns the same task)")
			.addOption(new Option("--priority <priority>", "queue priority").choices(["high", "normal", "low"]))
			.option("--timeout <s>", "deadline of one attempt, in seconds (server side)", seconds)
			.option("--ttl <s>", "how long the finished task is kept, in seconds", seconds);

	taskOptions(
		program
			.command("run")
			.description("submit a task, show its progress and print its output")
			.argument("<type>", "task type, e.g. sleep")
			.option("--wait <s>", "give up waiting after this many seconds (exit 3; the task goes on)", seconds)
			.option("-o, --output <file>", "write the output to a file instead of stdout (a file output: its bytes)"),
	).action(async (type: string, options: TaskOptions, command: Command) => {
		const client = clientOf(command);
		const input = await readInput(options);
		const signal = interruptSignal();
		const code = await follow(
			client,
			(hooks) =>
				client.run(type, input, {
					...submitFields(options),
					...hooks,
					signal,
					timeoutMs: options.wait === undefined ? undefined : options.wait * 1000,
				}),
			options.output,
		);
		run(code);
	});

	taskOptions(
		program
			.command("submit")
			.description("submit a task and print it (202: as queued; with --wait, finished if it ends in time)")
			.argument("<type>", "task type")
			.option("--wait <s>", "wait up to this many seconds (0-60) for it to end", seconds),
	).action(async (type: string, options: TaskOptions, command: Command) => {
		const task = await clientOf(command).submit(type, await readInput(options), { ...submitFields(options), wait: options.wait });
		print(task);
		run(EXIT.succeeded);
	});

	program
		.command("get")
		.description("print a task")
		.argument("<task>", "task id, or one of its URLs (capability token included)")
		.option("--wait <s>", "long-poll up to this many seconds (0-60) for it to end", seconds)
		.action(async (ref: string, options: { wait?: number }, command: Command) => {
			print(await clientOf(command).get(ref, { wait: options.wait }));
			run(EXIT.succeeded);
		});

	program
		.command("watch")
		.description("follow a task to its end with a progress bar; print its output (exit code by its end)")
		.argument("<task>", "task id, or one of its URLs")
		.option("--wait <s>", "give up after this many seconds (exit 3)", seconds)
		.option("-o, --output <file>", "write the output to a file instead of stdout")
		.action(async (ref: string, options: { wait?: number; output?: string }, command: Command) => {
			const client = clientOf(command);
			const signal = interruptSignal();
			const code = await follow(
				client,
				async (hooks) => {
					const task = await client.wait(ref, {
						...hooks,
						signal,
						timeoutMs: options.wait === undefined ? undefined : options.wait * 1000,
					});
					if (task.status !== "succeeded") throw task.status === "canceled" ? new TaskCanceledError(task) : new TaskFailedError(task);
					return task.output;
				},
				options.output,
			);
			run(code);
		});

	program
		.command("cancel")
		.description("cancel a task and print it")
		.argument("<task>", "task id, or one of its URLs")
		.action(async (ref: string, _options: unknown, command: Command) => {
			print(await clientOf(command).cancel(ref));
			run(EXIT.succeeded);
		});

	program
		.command("health")
		.description("print the server's health report")
		.action(async (_options: unknown, command: Command) => {
			print(await clientOf(command).health());
			run(EXIT.succeeded);
		});

	return program;
}

/** Parses `argv` and runs the command; resolves with the process exit code. */
async function main(argv: string[]): Promise<number> {
	let code: number = EXIT.succeeded;
	const program = buildProgram((c) => (code = c));
	try {
		await program.parseAsync(argv, { from: "user" });
		return code;
	} catch (e) {
		if (e instanceof CommanderError) {
			// --help and --version are not errors; every parse error is a usage error.
			return e.exitCode === 0 ? EXIT.succeeded : EXIT.usage;
		}
		if (e instanceof UsageError) {
			process.stderr.write(`error: ${e.message}\n`);
			return EXIT.usage;
		}
		if (e instanceof TaskCanceledError) return reportEnd(e.task);
		if (e instanceof HttpError) {
			process.stderr.write(`error: ${e.message}\n`);
			if (e.details !== undefined) process.stderr.write(`${JSON.stringify(e.details, null, 2)}\n`);
			return EXIT.failed;
		}
		const cause = (e as { cause?: { message?: string } }).cause?.message;
		process.stderr.write(`error: ${(e as Error).message ?? String(e)}${cause ? ` (${cause})` : ""}\n`);
		return EXIT.failed;
	}
}

process.exitCode = await main(process.argv.slice(2));
