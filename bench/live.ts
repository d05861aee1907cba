/**
 * L1, the live-results workload of bench/run.ts: N tasks, each followed by one WebSocket
 * (`urls.ws`) and one long-poll (`GET urls.get` with `Prefer: wait=60`), all held at once; every
 * subscriber must be released within 1 s of its task's end, and the delay from "result stored"
 * (the task's `finished_at`, stamped by the object as it commits the terminal state) to "event
 * received" (the client's Date.now() as the terminal frame / the long-poll's whole body arrives;
 * one machine, one clock) is reported, p50/p99/max, per delivery.
 *
 * Schedule. Submitting costs the server most of what a task costs (W2 runs at tens of tasks per
 * second here), so tasks of 1–3 s from their own submission would end while later ones are still
 * being submitted and far fewer than 2N connections would ever be open together. By default
 * ("hold") each task's `ms` is chosen at its submission so that it ends inside one window that
 * opens after every subscription is expected to be in place: ends are spread uniformly (seeded)
 * over `windowMs` starting `holdMs` after the first submission. The peak number of connections
 * open at once is measured and reported, so a slower submission than planned is visible.
 * "stream" (`--l1-stream`) instead gives every task 1000–3000 ms (seeded) from its submission:
 * ends follow the submission rate, and fewer connections are open at a time.
 *
 * Per task, the pipeline is: submit (no wait, at bounded concurrency, 429s retried), then at
 * once the long-poll and the WebSocket; the pool slot is held until the socket is open, so at
 * most `submitConcurrency` handshakes are in flight. Long-polls use node:http with their own
 * Agent (no pool limit below 2N sockets, destroyed at the end); sockets are Node's WebSocket.
 * A subscription that only began after its task ended (its first WebSocket frame is a terminal
 * snapshot; a long-poll sent after `finished_at`) measures nothing about the push: it is
 * counted apart and left out of the delay percentiles. A long-poll that comes back with the task
 * still running (its 60 s ran out) is sent again, at most twice.
 *
 * Everything is bounded: the submission phase, every request, and the whole workload (end of
 * the window + 70 s); whatever is still open then is closed and counted as never released.
 */
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { prng, runPool, sleep, summarize, timedPost, type Summary } from "./lib.ts";

export interface L1Options {
	/** Base URL of edgetask, e.g. http://127.0.0.1:8787. */
	base: string;
	apiKey: string;
	n: number;
	seed: number;
	/** Submissions (and WebSocket handshakes) in flight at once. */
	submitConcurrency: number;
	mode: "hold" | "stream";
	/** hold: the end window opens this long after the first submission. */
	holdMs: number;
	/** hold: task ends are spread uniformly over this window. */
	windowMs: number;
	/** Bound on the submission phase. */
	submitDeadlineMs: number;
	log: (line: string) => void;
}

/** Defaults for `n` tasks: a hold of 35 ms per task + 3 s (≥ 29 submissions/s needed), ends over n × 10 ms (≥ 2 s). */
export function l1Defaults(n: number): { holdMs: number; windowMs: number } {
	return { holdMs: 3000 + n * 35, windowMs: Math.max(2000, n * 10) };
}

const TERMINAL = new Set(["succeeded", "failed", "canceled", "timed_out"]);
const MAX_POLLS = 3;
const LONG_POLL_TIMEOUT_MS = 70_000;
const WS_OPEN_TIMEOUT_MS = 15_000;
const RELEASE_BOUND_MS = 1000;

interface WsTrack {
	openMs?: number;
	/** Date.now() when the socket opened. */
	openedAt?: number;
	frames: number;
	/** Date.now() as the terminal frame arrived. */
	terminalAt?: number;
	/** finished_at carried by that frame. */
	finishedAt?: number;
	/** The first frame was already terminal: subscribed after the end. */
	lateSubscription: boolean;
	closeCode?: number;
	/** Date.now() when the socket left OPEN (the server's close frame arrived), seen by polling readyState. */
	closingAt?: number;
	/** Date.now() of the close event (fires only once the TCP connection is gone). */
	closedAt?: number;
	/** Closed by the benchmark at its deadline, not by the server. */
	closedByClient: boolean;
	error?: string;
}

interface LpTrack {
	polls: number;
	/** Date.now() as the last poll was sent. */
	sentAt?: number;
	/** Date.now() as the terminal answer's whole body arrived. */
	recvAt?: number;
	finishedAt?: number;
	status?: number;
	error?: string;
}

interface TaskTrack {
	ms: number;
	id?: string;
	submitError?: string;
	/** Date.now() as the submission's response arrived. */
	submittedAt?: number;
	ws: WsTrack;
	lp: LpTrack;
	done: Promise<void>;
}

interface TaskJson {
	id?: string;
	status?: string;
	finished_at?: string | null;
	urls?: { get?: string; ws?: string };
}

/** One long-poll on `agent`: status and body once the whole body arrived, or why not. Never throws. */
function getOnce(url: string, agent: http.Agent): Promise<{ status: number; body: string; recvAt: number } | { error: string }> {
	return new Promise((resolve) => {
		let settled = false;
		const finish = (v: { status: number; body: string; recvAt: number } | { error: string }) => {
			if (settled) return;
			settled = true;
			resolve(v);
		};
		const req = http.get(url, { agent, headers: { prefer: "wait=60", accept: "application/json" } }, (res) => {
			const chunks: Buffer[] = [];
			res.on("data", (c: Buffer) => chunks.push(c));
			res.on("end", () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), recvAt: Date.now() }));
			res.on("error", (e) => finish({ error: `response: ${String(e)}` }));
			res.on("aborted", () => finish({ error: "response aborted" }));
		});
		req.setTimeout(LONG_POLL_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${LONG_POLL_TIMEOUT_MS} ms`)));
		req.on("error", (e) => finish({ error: String(e) }));
	});
}

/** Counts distinct error messages (first few kept) for the report. */
function examples(errors: (string | undefined)[]): { count: number; examples: string[] } {
	const list = errors.filter((e): e is string => e !== undefined);
	const byMsg = new Map<string, number>();
	for (const e of list) byMsg.set(e.slice(0, 160), (byMsg.get(e.slice(0, 160)) ?? 0) + 1);
	return { count: list.length, examples: [...byMsg].slice(0, 4).map(([m, c]) => `${c}× ${m}`) };
}

export async function runL1(o: L1Options) {
	const rnd = prng(o.seed ^ 0x11);
	const spread = Array.from({ length: o.n }, () => rnd());
	const agent = new http.Agent({ keepAlive: false, maxSockets: Math.max(256, 2 * o.n + 64) });
	const sockets = new Set<WebSocket>();
	const tracks: TaskTrack[] = [];
	const loop = monitorEventLoopDelay({ resolution: 5 });
	loop.enable();

	// Connections held at once (sockets open + long-polls waiting), sampled on every change.
	let wsOpen = 0;
	let lpWaiting = 0;
	let peak = { total: 0, ws: 0, lp: 0 };
	const bump = () => {
		if (wsOpen + lpWaiting > peak.total) peak = { total: wsOpen + lpWaiting, ws: wsOpen, lp: lpWaiting };
	};

	const t0 = Date.now();
	const windowStart = t0 + o.holdMs;
	const windowEnd = windowStart + o.windowMs;
	const hardDeadline = (o.mode === "hold" ? windowEnd : t0 + o.submitDeadlineMs + 3000) + 70_000;

	const longPoll = async (tr: TaskTrack, url: string) => {
		for (let i = 0; i < MAX_POLLS && Date.now() < hardDeadline; i++) {
			tr.lp.polls++;
			tr.lp.sentAt = Date.now();
			lpWaiting++;
			bump();
			const r = await getOnce(url, agent);
			lpWaiting--;
			if ("error" in r) {
				tr.lp.error = r.error;
				return;
			}
			tr.lp.status = r.status;
			if (r.status !== 200) {
				tr.lp.error = `HTTP ${r.status} ${r.body.slice(0, 120)}`;
				return;
			}
			let task: TaskJson | null = null;
			try {
				task = JSON.parse(r.body) as TaskJson;
			} catch {
				tr.lp.error = "long-poll answer is not JSON";
				return;
			}
			if (task?.status && TERMINAL.has(task.status)) {
				tr.lp.recvAt = r.recvAt;
				tr.lp.finishedAt = task.finished_at ? Date.parse(task.finished_at) : undefined;
				if (tr.lp.finishedAt === undefined) tr.lp.error = "terminal answer without finished_at";
				return;
			}
			tr.lp.error = `still ${task?.status ?? "?"} after ${MAX_POLLS} long-polls`;
		}
	};

	/** Opens the task's socket; resolves `opened` once it is open (or failed), `closed` once it closed. */
	const subscribe = (tr: TaskTrack, url: string): { opened: Promise<void>; closed: Promise<void> } => {
		let markOpened!: () => void;
		const opened = new Promise<void>((r) => (markOpened = r));
		const closed = new Promise<void>((resolveClosed) => {
			const startedAt = performance.now();
			let ws: WebSocket;
			try {
				ws = new WebSocket(url);
			} catch (e) {
				tr.ws.error = `WebSocket: ${String(e)}`;
				markOpened();
				resolveClosed();
				return;
			}
			sockets.add(ws);
			let isOpen = false;
			const openTimer = setTimeout(() => {
				if (!isOpen) {
					tr.ws.error = `not open after ${WS_OPEN_TIMEOUT_MS} ms`;
					markOpened();
				}
			}, WS_OPEN_TIMEOUT_MS);
			ws.addEventListener("open", () => {
				isOpen = true;
				wsOpen++;
				bump();
				tr.ws.openedAt = Date.now();
				tr.ws.openMs = performance.now() - startedAt;
				clearTimeout(openTimer);
				markOpened();
			});
			ws.addEventListener("message", (ev: MessageEvent) => {
				const at = Date.now();
				tr.ws.frames++;
				if (tr.ws.terminalAt !== undefined) return;
				let event: { type?: string; data?: { status?: string; finished_at?: string | null } } | null = null;
				try {
					event = JSON.parse(String(ev.data)) as typeof event;
				} catch {
					return;
				}
				const terminal = TERMINAL.has(event?.type ?? "") || (event?.type === "snapshot" && TERMINAL.has(event.data?.status ?? ""));
				if (!terminal) return;
				tr.ws.terminalAt = at;
				if (tr.ws.frames === 1) tr.ws.lateSubscription = true;
				const f = event?.data?.finished_at;
				tr.ws.finishedAt = f ? Date.parse(f) : undefined;
				if (tr.ws.finishedAt === undefined) tr.ws.error = "terminal frame without finished_at";
				// The close frame fires no event of its own (close waits for TCP): watch readyState, ≤ 2 s.
				const watchUntil = at + 2000;
				const watch = setInterval(() => {
					if (ws.readyState !== WebSocket.OPEN) {
						tr.ws.closingAt ??= Date.now();
						clearInterval(watch);
					} else if (Date.now() > watchUntil) clearInterval(watch);
				}, 2);
			});
			ws.addEventListener("error", () => {
				tr.ws.error ??= isOpen ? "socket error" : "handshake failed";
			});
			ws.addEventListener("close", (ev: CloseEvent) => {
				if (isOpen) wsOpen--;
				tr.ws.closingAt ??= Date.now();
				tr.ws.closeCode = ev.code;
				tr.ws.closedAt = Date.now();
				sockets.delete(ws);
				clearTimeout(openTimer);
				markOpened();
				resolveClosed();
			});
		});
		return { opened, closed };
	};

	const submitOne = async (i: number): Promise<void> => {
		const tr: TaskTrack = {
			ms: 0,
			ws: { frames: 0, lateSubscription: false, closedByClient: false },
			lp: { polls: 0 },
			done: Promise.resolve(),
		};
		tracks[i] = tr;
		for (let attempt = 0; attempt < 20; attempt++) {
			const now = Date.now();
			tr.ms =
				o.mode === "hold" ? Math.max(1000, Math.round(windowStart + spread[i]! * o.windowMs - now)) : 1000 + Math.floor(spread[i]! * 2001);
			const t = await timedPost(
				`${o.base}/v1/tasks`,
				JSON.stringify({ type: "sleep", input: { ms: tr.ms } }),
				{ authorization: `Bearer ${o.apiKey}` },
				30_000,
			);
			if (t.status === 429 && Date.now() < t0 + o.submitDeadlineMs) {
				await sleep(250 + attempt * 250);
				continue;
			}
			const task = t.json as TaskJson | null;
			if (t.status !== 202 && t.status !== 200) {
				tr.submitError = `HTTP ${t.status} ${t.error ?? ""}`.trim().slice(0, 160);
				return;
			}
			if (!task?.id || !task.urls?.ws || !task.urls.get) {
				tr.submitError = "submit answer without id / urls";
				return;
			}
			tr.id = task.id;
			tr.submittedAt = Date.now();
			const lp = longPoll(tr, task.urls.get);
			const ws = subscribe(tr, task.urls.ws);
			tr.done = Promise.all([lp, ws.closed]).then(() => {});
			await ws.opened;
			return;
		}
		tr.submitError = "429 after 20 tries";
	};

	// ---- submit and subscribe
	let lastLog = Date.now();
	const { issued, timedOut } = await runPool(o.n, o.submitConcurrency, o.submitDeadlineMs, submitOne, (done) => {
		if (Date.now() - lastLog > 5000) {
			lastLog = Date.now();
			o.log(
				`    L1: ${done}/${o.n} submitted, ${wsOpen} sockets open, ${lpWaiting} long-polls waiting, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
			);
		}
	});
	const submitWallMs = Date.now() - t0;
	const submitted = tracks.filter((t) => t?.id).length;
	o.log(
		`    L1: submission done in ${(submitWallMs / 1000).toFixed(1)} s (${submitted}/${o.n} ok, ${(submitted / (submitWallMs / 1000)).toFixed(1)}/s); ${wsOpen} sockets open, ${lpWaiting} long-polls waiting` +
			(o.mode === "hold"
				? `; window ${((windowStart - Date.now()) / 1000).toFixed(1)} s from now, ${(o.windowMs / 1000).toFixed(1)} s long`
				: ""),
	);
	const heldAtWindow = { ws: 0, lp: 0, sampled: false };
	let windowTimer: ReturnType<typeof setTimeout> | undefined;
	if (o.mode === "hold") {
		const sample = () => {
			heldAtWindow.ws = wsOpen;
			heldAtWindow.lp = lpWaiting;
			heldAtWindow.sampled = true;
		};
		// The moment the first task may end: what is held then is what the window is tested with.
		if (windowStart > Date.now()) windowTimer = setTimeout(sample, windowStart - Date.now());
	}

	// ---- wait for every release, bounded
	const all = Promise.all(tracks.filter(Boolean).map((t) => t.done));
	let progress: ReturnType<typeof setInterval> | undefined = setInterval(() => {
		const got = tracks.filter((t) => t?.ws.terminalAt !== undefined).length;
		const lps = tracks.filter((t) => t?.lp.recvAt !== undefined).length;
		o.log(
			`    L1: ${got}/${submitted} terminal frames, ${lps}/${submitted} long-polls answered; ${wsOpen} sockets open, ${lpWaiting} long-polls waiting`,
		);
	}, 10_000);
	const settled = await Promise.race([all.then(() => true), sleep(Math.max(0, hardDeadline - Date.now())).then(() => false)]);
	clearInterval(progress);
	progress = undefined;
	clearTimeout(windowTimer);
	const wallMs = Date.now() - t0;

	// ---- close whatever is left, then the long-poll agent
	for (const t of tracks) if (t && t.ws.closeCode === undefined && t.id) t.ws.closedByClient = true;
	for (const ws of sockets) {
		try {
			ws.close(1000, "bench deadline");
		} catch {
			/* closing already */
		}
	}
	const closeBy = Date.now() + 3000;
	while (sockets.size > 0 && Date.now() < closeBy) await sleep(50);
	const leftOpen = sockets.size;
	agent.destroy();
	loop.disable();

	// ---- summary
	const ok = tracks.filter((t): t is TaskTrack => t !== undefined && t.id !== undefined);
	const wsInTime = ok.filter((t) => t.ws.terminalAt !== undefined && t.ws.finishedAt !== undefined && !t.ws.lateSubscription);
	const wsDelay = wsInTime.map((t) => t.ws.terminalAt! - t.ws.finishedAt!);
	const lpAnswered = ok.filter((t) => t.lp.recvAt !== undefined && t.lp.finishedAt !== undefined);
	const lpLate = lpAnswered.filter((t) => t.lp.sentAt! > t.lp.finishedAt!);
	const lpInTime = lpAnswered.filter((t) => t.lp.sentAt! <= t.lp.finishedAt!);
	const lpDelay = lpInTime.map((t) => t.lp.recvAt! - t.lp.finishedAt!);
	const closeDelay = ok
		.filter((t) => t.ws.closeCode === 1000 && !t.ws.closedByClient && t.ws.finishedAt !== undefined && !t.ws.lateSubscription)
		.map((t) => t.ws.closedAt! - t.ws.finishedAt!);
	const closeFrameDelay = ok
		.filter((t) => t.ws.closingAt !== undefined && !t.ws.closedByClient && t.ws.finishedAt !== undefined && !t.ws.lateSubscription)
		.map((t) => t.ws.closingAt! - t.ws.finishedAt!);
	const ends = ok.map((t) => t.ws.finishedAt ?? t.lp.finishedAt).filter((x): x is number => x !== undefined);
	const endSpan = ends.length ? { first: Math.min(...ends) - t0, last: Math.max(...ends) - t0 } : null;
	const closeCodes: Record<string, number> = {};
	for (const t of ok) {
		const k = t.ws.closedByClient ? "closed by bench (deadline)" : String(t.ws.closeCode ?? "never opened");
		closeCodes[k] = (closeCodes[k] ?? 0) + 1;
	}
	const notSubmitted = o.n - ok.length;
	const wsNever = ok.length - ok.filter((t) => t.ws.terminalAt !== undefined).length;
	const lpNever = ok.length - lpAnswered.length;
	const ns = (x: number) => x / 1e6;
	return {
		n: o.n,
		mode: o.mode,
		holdMs: o.holdMs,
		windowMs: o.windowMs,
		submitConcurrency: o.submitConcurrency,
		issued,
		submitTimedOut: timedOut,
		submitted: ok.length,
		submitErrors: examples(tracks.map((t) => t?.submitError)),
		submitWallMs,
		submitsPerS: ok.length / (submitWallMs / 1000),
		settled,
		wallMs,
		/** Task ends relative to the first submission, ms. */
		endSpan,
		peakHeld: peak,
		heldAtWindow: heldAtWindow.sampled ? heldAtWindow : null,
		ws: {
			delay: summarize(wsDelay),
			/** Terminal frame > 1 s after finished_at, or none at all, among all submitted tasks. */
			lateOrMissing: wsDelay.filter((d) => d > RELEASE_BOUND_MS).length + wsNever,
			never: wsNever,
			lateSubscriptions: ok.filter((t) => t.ws.lateSubscription).length,
			closeCodes,
			notClosed1000: ok.filter((t) => t.ws.closeCode !== 1000 || t.ws.closedByClient).length,
			/** Result stored → the socket's close event (the TCP connection gone). */
			closeDelay: summarize(closeDelay),
			/** Result stored → the server's close frame seen (readyState left OPEN; 2 ms polling). */
			closeFrameDelay: summarize(closeFrameDelay),
			closeFrameLate: closeFrameDelay.filter((d) => d > RELEASE_BOUND_MS).length,
			openMs: summarize(ok.map((t) => t.ws.openMs).filter((x): x is number => x !== undefined)),
			frames: summarize(ok.map((t) => t.ws.frames)),
			errors: examples(ok.map((t) => t.ws.error)),
		},
		lp: {
			delay: summarize(lpDelay),
			lateOrMissing: lpDelay.filter((d) => d > RELEASE_BOUND_MS).length + lpNever,
			never: lpNever,
			lateSubscriptions: lpLate.length,
			repolled: ok.filter((t) => t.lp.polls > 1).length,
			errors: examples(ok.map((t) => t.lp.error)),
		},
		/** Both deliveries of every task, plus tasks never submitted, released > 1 s late or never. */
		releasedLateOrNever:
			notSubmitted +
			wsDelay.filter((d) => d > RELEASE_BOUND_MS).length +
			wsNever +
			lpDelay.filter((d) => d > RELEASE_BOUND_MS).length +
			lpNever,
		notSubmitted,
		leftOpen,
		clientLoopDelayMs: { p50: ns(loop.percentile(50)), p99: ns(loop.percentile(99)), max: ns(loop.max) },
	};
}

export type L1Result = Awaited<ReturnType<typeof runL1>>;

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const sum = (s: Summary) => `p50 ${f1(s.p50)} p99 ${f1(s.p99)} max ${f1(s.max)} ms (n=${s.n})`;

/** Human-readable lines for the console. */
export function describeL1(r: L1Result): string[] {
	const lines = [
		`${r.submitted}/${r.n} submitted in ${(r.submitWallMs / 1000).toFixed(1)} s (${f1(r.submitsPerS)}/s, conc ${r.submitConcurrency})${r.submitErrors.count ? `, submit errors ${r.submitErrors.count}: ${r.submitErrors.examples.join("; ")}` : ""}`,
		`peak held at once: ${r.peakHeld.total} (${r.peakHeld.ws} sockets + ${r.peakHeld.lp} long-polls)${r.heldAtWindow ? `; at the window's start ${r.heldAtWindow.ws + r.heldAtWindow.lp} (${r.heldAtWindow.ws} + ${r.heldAtWindow.lp})` : ""}; task ends ${r.endSpan ? `${(r.endSpan.first / 1000).toFixed(1)}–${(r.endSpan.last / 1000).toFixed(1)} s` : "n/a"} after the first submission`,
		`WS terminal frame after result stored: ${sum(r.ws.delay)}; >1 s or never ${r.ws.lateOrMissing} (never ${r.ws.never}); subscribed after the end ${r.ws.lateSubscriptions}; close codes ${JSON.stringify(r.ws.closeCodes)}; close frame after stored ${sum(r.ws.closeFrameDelay)}; close event (TCP gone) after stored ${sum(r.ws.closeDelay)}; handshake ${sum(r.ws.openMs)}${r.ws.errors.count ? `; errors ${r.ws.errors.examples.join("; ")}` : ""}`,
		`long-poll answer after result stored: ${sum(r.lp.delay)}; >1 s or never ${r.lp.lateOrMissing} (never ${r.lp.never}); sent after the end ${r.lp.lateSubscriptions}; re-polled ${r.lp.repolled}${r.lp.errors.count ? `; errors ${r.lp.errors.examples.join("; ")}` : ""}`,
		`client event-loop delay p50 ${f1(r.clientLoopDelayMs.p50)} p99 ${f1(r.clientLoopDelayMs.p99)} max ${f1(r.clientLoopDelayMs.max)} ms; ${r.settled ? "all settled" : "DEADLINE reached"} after ${(r.wallMs / 1000).toFixed(1)} s; sockets left open ${r.leftOpen}`,
	];
	return lines;
}
