import cliProgress from "cli-progress";
import type { Task, TaskEvent, TaskProgress } from "../src/types";

/** Shows a task's life on stderr while the CLI waits for it. */
export interface Display {
	event(event: TaskEvent, task: Task | null): void;
	progress(progress: TaskProgress, task: Task): void;
	stop(): void;
}

/**
 * A terminal gets a live bar (percent, elapsed time, status and the processor's message),
 * redrawn in place; anything else (a pipe, a file, CI logs) gets one plain line per event.
 */
export function createDisplay(stream: NodeJS.WriteStream): Display {
	return stream.isTTY ? new BarDisplay(stream) : new LineDisplay(stream);
}

class BarDisplay implements Display {
	private readonly bar: cliProgress.SingleBar;
	private started = false;

	constructor(stream: NodeJS.WriteStream) {
		this.bar = new cliProgress.SingleBar(
			{
				stream,
				format: "{bar} {percentage}% | {duration_formatted} | {status} {message}",
				hideCursor: true,
				// A terminal without a known width (some pseudo-terminals report 0) still gets a bar.
				barsize: 30,
				etaBuffer: 50,
			},
			cliProgress.Presets.shades_classic,
		);
	}

	private ensureStarted(): void {
		if (this.started) return;
		this.started = true;
		this.bar.start(100, 0, { status: "queued", message: "" });
	}

	event(event: TaskEvent, task: Task | null): void {
		this.ensureStarted();
		const status = task?.status ?? (event.type === "snapshot" ? event.data.status : event.type);
		this.bar.update({ status: status ?? event.type });
	}

	progress(progress: TaskProgress, task: Task): void {
		this.ensureStarted();
		this.bar.update(Math.floor(progress.percent), { status: task.status, message: progress.message ?? "" });
	}

	stop(): void {
		if (this.started) this.bar.stop();
	}
}

class LineDisplay implements Display {
	private readonly t0 = Date.now();

	constructor(private readonly stream: NodeJS.WriteStream) {}

	event(event: TaskEvent, task: Task | null): void {
		const elapsed = ((Date.now() - this.t0) / 1000).toFixed(1).padStart(6);
		// Long-polling yields states (snapshots), named by their status; streams yield the events themselves.
		const kind = event.type === "snapshot" && event.seq === 0 ? String(event.data.status) : event.type;
		const progress = event.data.progress ?? (event.type === "progress" ? task?.progress : null);
		const parts = [`${elapsed}s`, event.task_id, event.seq > 0 ? `#${event.seq}` : "", kind];
		if (progress) parts.push(`${Math.floor(progress.percent)}%`);
		if (progress?.message) parts.push(progress.message);
		const error = event.data.error;
		if (error) parts.push(`${error.code}: ${error.message}`);
		this.stream.write(`${parts.filter(Boolean).join(" ")}\n`);
	}

	progress(): void {
		/* every progress change is an event line already */
	}

	stop(): void {}
}
