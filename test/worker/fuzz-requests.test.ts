/**
 * Property-based fuzzing of every route with fast-check: malformed bodies (random JSON, wrong
 * types, huge strings, lone surrogates, deep nesting, invalid UTF-8), bad headers (content types,
 * Prefer, Authorization, Last-Event-ID, Upgrade), bad ids and paths, wrong methods; then bad
 * frames on both kinds of WebSocket.
 *
 * For every request: no status >= 500, an answer within 10 s, and every error is JSON in the API's
 * envelope `{error: {code, message}}` (the seed envelope on POST /process). Submissions that must
 * be refused carry a fresh client id, and every such id is checked to be unknown afterwards.
 * The worker must then still run a normal task end to end.
 *
 * Requests are sent in concurrent batches; `sent` counts each one that reached the worker. The
 * seed is printed; set FUZZ_SEED below to replay a run.
 */
import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookUrlProblem } from "../../src/webhooks/signing";
import { sleep, within } from "../shared/waits";
import { getTask, ORIGIN, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import { openSocket, type RecordingSocket } from "./support/socket";
import { readSse } from "./support/sse";

const FUZZ_SEED: number | undefined = undefined;
const seed = FUZZ_SEED ?? (Date.now() ^ 0x5eed) >>> 0;
const BATCH = 16;
const ANSWER_WITHIN_MS = 10_000;

/** Requests that reached the worker, by group, and WebSocket frames sent. */
const sent: Record<string, number> = {};
let framesSent = 0;
/** Answers seen, by status and error code, for the log. */
const answers: Record<string, number> = {};
/** Client ids of submissions that had to be refused: each must be unknown afterwards. */
const refusedIds = new Set<string>();
/** A finished task and a task that stays queued, for routes that need an existing id. */
let finishedId = "";

function count(group: string): void {
	sent[group] = (sent[group] ?? 0) + 1;
}
function total(): number {
	return Object.values(sent).reduce((a, b) => a + b, 0);
}

// ---- the request model ----

type Body =
	| { kind: "none" }
	| { kind: "text"; text: string }
	| { kind: "bytes"; bytes: Uint8Array }
	| { kind: "stream"; text: string; chunk: number };

interface Case {
	group: string;
	method: string;
	path: string;
	headers: [string, string][];
	body: Body;
	/** Statuses this case may answer (beyond "< 500, JSON error"); undefined: any. */
	allowed?: number[];
	/** A client id that must not exist afterwards. */
	refusedId?: string;
	/** Answers in the seed envelope (POST /process). */
	seedEnvelope?: boolean;
	/** Error code expected, when the case targets one. */
	code?: string;
}

function describeCase(c: Case): string {
	const body =
		c.body.kind === "none"
			? ""
			: c.body.kind === "bytes"
				? ` bytes[${c.body.bytes.length}]`
				: ` ${c.body.kind}[${c.body.text.length}] ${JSON.stringify(c.body.text.slice(0, 160))}`;
	return `${c.group}: ${c.method} ${c.path.slice(0, 200)} ${JSON.stringify(c.headers).slice(0, 300)}${body}`;
}

function buildRequest(c: Case): Request {
	const headers = new Headers();
	for (const [name, value] of c.headers) headers.append(name, value);
	let body: BodyInit | undefined;
	if (c.body.kind === "text") body = c.body.text;
	else if (c.body.kind === "bytes") body = c.body.bytes;
	else if (c.body.kind === "stream") {
		const bytes = new TextEncoder().encode(c.body.text);
		const size = Math.max(1, c.body.chunk);
		let at = 0;
		body = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (at >= bytes.length) controller.close();
				else {
					controller.enqueue(bytes.slice(at, at + size));
					at += size;
				}
			},
		});
	}
	return new Request(`${ORIGIN}${c.path}`, { method: c.method, headers, body });
}

/** Sends one case and checks the invariants; throws with the case on any violation. */
async function exchange(c: Case): Promise<void> {
	const request = buildRequest(c);
	count(c.group);
	const fail = (why: string) => {
		throw new Error(`${why}\n  case: ${describeCase(c)}`);
	};
	const res = await within(exports.default.fetch(request), ANSWER_WITHIN_MS, describeCase(c)).catch((e: unknown) => fail(String(e)));
	const tally = (key: string) => {
		answers[key] = (answers[key] ?? 0) + 1;
	};
	tally(String(res.status));
	if (res.status >= 500) fail(`answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
	if (c.allowed && !c.allowed.includes(res.status))
		fail(`answered ${res.status}, expected one of ${c.allowed}: ${(await res.text()).slice(0, 300)}`);
	if (c.refusedId) refusedIds.add(c.refusedId);
	if (res.status === 101) {
		const ws = res.webSocket;
		if (!ws) fail("101 without a WebSocket");
		ws!.accept();
		ws!.close(1000, "fuzz");
		return;
	}
	const type = res.headers.get("content-type") ?? "";
	if (type.startsWith("text/event-stream")) {
		if (res.status !== 200) fail(`event stream with status ${res.status}`);
		await res.body?.cancel();
		return;
	}
	const text = await within(res.text(), ANSWER_WITHIN_MS, `body of ${describeCase(c)}`);
	if (c.method === "HEAD") return;
	// 204: a resumed event stream of a finished task has nothing left (stops EventSource reconnecting).
	if (res.status === 204) {
		if (text !== "") fail(`204 with a body: ${text.slice(0, 100)}`);
		return;
	}
	if (res.status < 400) {
		if (!type.includes("application/json")) fail(`${res.status} is not JSON (${type})`);
		return;
	}
	if (!type.includes("application/json")) fail(`error ${res.status} is not JSON (${type}): ${text.slice(0, 200)}`);
	let body: any;
	try {
		body = JSON.parse(text);
	} catch {
		fail(`error ${res.status} body does not parse: ${text.slice(0, 200)}`);
	}
	if (c.seedEnvelope && res.status !== 405) {
		const ok =
			body?.success === false &&
			body.code === 1 &&
			typeof body.msg === "string" &&
			body.msg.length > 0 &&
			typeof body.data === "object" &&
			typeof body.data?.uuid === "string" &&
			"result" in body.data;
		if (!ok) fail(`${res.status} is not the seed envelope: ${text.slice(0, 300)}`);
	} else {
		const error = body?.error;
		if (typeof error?.code !== "string" || typeof error?.message !== "string" || !error.code || !error.message) {
			fail(`${res.status} is not the error envelope: ${text.slice(0, 300)}`);
		}
		tally(error.code);
		if (c.code && error.code !== c.code) fail(`error code ${error.code}, expected ${c.code}`);
		if (res.status === 405 && !res.headers.get("allow")) fail("405 without Allow");
		if (res.status === 429 && !res.headers.get("retry-after")) fail("429 without Retry-After");
	}
}

/** Prints a case briefly in fast-check's reports (bodies reach 200 KB). */
function brief(c: Case): Case {
	return Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) });
}

/** Runs `numRuns` batches of BATCH cases concurrently. */
async function fuzz(arb: fc.Arbitrary<Case>, numRuns: number): Promise<void> {
	await fc.assert(
		fc.asyncProperty(fc.array(arb.map(brief), { minLength: BATCH, maxLength: BATCH }), async (cases) => {
			await Promise.all(cases.map(exchange));
		}),
		{ numRuns, seed, endOnFailure: true },
	);
}

// ---- value generators ----

const ID_CHARS = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"];
const idChar = fc.constantFrom(...ID_CHARS);
const PROCESSOR_TYPES = new Set(["sleep", "echo", "fail", "hang", "flaky"]);
const SUBMIT_KEYS = new Set(["type", "input", "id", "priority", "timeout_s", "ttl_s", "webhook", "webhook_events"]);

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nasty: fc.Arbitrary<string> = fc.oneof(
	fc.string({ unit: "binary", maxLength: 40 }),
	fc.string({ unit: "grapheme", maxLength: 20 }),
	fc.array(fc.oneof(loneSurrogate, fc.string({ unit: "binary", maxLength: 3 })), { minLength: 1, maxLength: 10 }).map((a) => a.join("")),
	fc.constantFrom(
		"",
		" ",
		"\u0000",
		"null",
		"undefined",
		"__proto__",
		"constructor",
		"toString",
		"../../etc/passwd",
		"%00",
		"\ufeff",
		"\u202e",
		"a\nb",
		"${x}",
		"' OR 1=1 --",
		"\ud83d",
		"\ude00x",
	),
);
/** 1 KB – 200 KB of one character (multi-byte ones included). */
const huge = fc
	.record({ n: fc.integer({ min: 1_000, max: 200_000 }), ch: fc.constantFrom("a", "é", "😀", "\\", '"', "\ud800", "[", "{") })
	.map(({ n, ch }) => ch.repeat(Math.max(1, Math.floor(n / ch.length))));
/** JSON text nested 65 – 5000 levels (limit: 64), closed or not. */
const deepJson = fc
	.record({ n: fc.integer({ min: 65, max: 5000 }), style: fc.constantFrom("array", "object", "mixed", "unclosed", "strings") })
	.map(({ n, style }) => {
		if (style === "array") return `${"[".repeat(n)}${"]".repeat(n)}`;
		if (style === "object") return `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
		if (style === "mixed") return `${'[{"a":'.repeat(n)}0${"}]".repeat(n)}`;
		if (style === "strings") return `${'["]",'.repeat(n)}0${"]".repeat(n)}`;
		return "[".repeat(n);
	});
const jsonText = (v: unknown) => JSON.stringify(v) ?? "null";
/** encodeURIComponent that accepts lone surrogates (as U+FFFD) instead of throwing. */
const encode = (s: string) =>
	encodeURIComponent(s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD"));

const validJsonType = fc.constantFrom(
	"application/json",
	"application/json; charset=utf-8",
	"APPLICATION/JSON",
	"application/vnd.api+json",
	"application/json;charset=UTF-8",
);
const invalidJsonType = fc.constantFrom(
	"text/plain",
	"application/jsonx",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=x",
	"json",
	"",
	"text/json",
	"application/ json",
	"*/*",
	"application/javascript",
	"x/application/json",
);
const badPrefer = fc.oneof(
	fc.constantFrom(
		"wait=abc",
		"wait=-1",
		"wait=61",
		"wait=1e9",
		"wait=",
		"wait",
		"wait=Infinity",
		"wait=NaN",
		"respond-async, wait=x",
		"wait=--1",
		"WAIT=99",
		"wait=60.0001",
		'wait="x"',
	),
	// No "," or ";" in the junk: "wait=5,junk" is a valid wait=5 followed by another preference.
	fc
		.string({ unit: "grapheme-ascii", maxLength: 20 })
		.filter((s) => !/[,;]/.test(s))
		.map((s) => `wait=${s}x`),
);
const junkHeaderValue = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 120 });
const junkAuth = fc.oneof(
	junkHeaderValue,
	junkHeaderValue.map((s) => `Bearer ${s}`),
	fc.constantFrom("Bearer", "Basic Zm9vOmJhcg==", "Bearer k1", "bearer", "Bearer    "),
);
const junkLastEventId = fc.oneof(
	junkHeaderValue,
	fc.constantFrom("-1", "1.5", "1e3", "0x10", "NaN", "Infinity", "99999999999999999999999", "", " ", "+1", "1 2"),
);
const uniqueIp = fc.constant(null).map(() => `fuzz-${crypto.randomUUID()}`);

/** Some extra header noise: Authorization junk, random names and values. */
const noise: fc.Arbitrary<[string, string][]> = fc.array(
	fc.oneof(
		junkAuth.map((v): [string, string] => ["authorization", v]),
		fc.tuple(
			fc.constantFrom(
				"accept",
				"accept-encoding",
				"x-edgetask-hub",
				"x-edgetask-scope",
				"cookie",
				"origin",
				"te",
				"x-forwarded-for",
				"range",
			),
			junkHeaderValue,
		),
		fc.tuple(
			fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz-0123456789"), minLength: 1, maxLength: 20 }).map((n) => `x-${n}`),
			junkHeaderValue,
		),
	),
	{ maxLength: 3 },
);

// ---- POST /v1/tasks: submissions that must be refused ----

type Entry = [string, { json: unknown } | { raw: string }];
function objectText(entries: Entry[]): string {
	return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${"raw" in v ? v.raw : jsonText(v.json)}`).join(",")}}`;
}

/** One thing wrong with an otherwise valid submission (echo with a fresh id). */
const badSubmission: fc.Arbitrary<{ label: string; entries: (id: string) => Entry[]; code?: string; status?: number[] }> = fc.oneof(
	// type: missing, wrong JSON type, empty, too long, unknown, junk
	fc
		.oneof(
			fc.constant(undefined),
			fc.integer(),
			fc.constant(null),
			fc.array(fc.string(), { maxLength: 2 }),
			fc.boolean(),
			fc.constant(""),
			fc.string({ minLength: 65, maxLength: 200 }),
			fc.string({ maxLength: 20 }).map((s) => `zz-${s}`),
			nasty.filter((s) => !PROCESSOR_TYPES.has(s)),
		)
		.map((type) => ({
			label: "type",
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				...(type === undefined ? [] : ([["type", { json: type }]] as Entry[])),
				["input", { json: 1 }],
			],
			status: [400, 422],
		})),
	// an unknown field (the body is strict)
	fc
		.tuple(
			fc
				.oneof(nasty, fc.constantFrom("__proto__", "constructor", "Type", "ID", "timeout", "input ", "prototype"))
				.filter((k) => !SUBMIT_KEYS.has(k)),
			fc.jsonValue({ maxDepth: 3 }),
		)
		.map(([key, value]) => ({
			label: `extra key ${JSON.stringify(key)}`,
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: "echo" }],
				[key, { json: value }],
			],
			code: "invalid_request",
		})),
	// priority
	fc
		.oneof(
			fc.string().filter((s) => !["high", "normal", "low"].includes(s)),
			fc.integer(),
			fc.constant(null),
			fc.constant("HIGH"),
		)
		.map((priority) => ({
			label: "priority",
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: "echo" }],
				["priority", { json: priority }],
			],
			code: "invalid_request",
		})),
	// timeout_s / ttl_s out of range or of the wrong type
	fc
		.tuple(
			fc.constantFrom("timeout_s", "ttl_s"),
			fc.oneof(
				fc.constant(0),
				fc.double({ max: 0, noNaN: true }),
				fc.double({ min: 2_592_001, max: 1e300, noNaN: true }),
				fc.string(),
				fc.constant(null),
				fc.boolean(),
				fc.constant([1]),
				fc.constant({ s: 1 }),
			),
		)
		.map(([key, value]) => ({
			label: key,
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: "echo" }],
				[key, { json: value }],
			],
			code: "invalid_request",
		})),
	// timeout_s above the 840 s an attempt may run (its alarm invocation's 15 minutes, less headroom)
	fc.double({ min: 840.001, max: 86_400, noNaN: true }).map((t) => ({
		label: "timeout_s > 840",
		entries: (id: string): Entry[] => [
			["id", { json: id }],
			["type", { json: "hang" }],
			["timeout_s", { json: t }],
		],
		code: "invalid_request",
	})),
	// webhook: anything the API refuses (the worker suite has a WEBHOOK_SECRET, so a valid https
	// URL would be accepted: those are left out)
	fc
		.oneof(
			nasty,
			fc.webUrl(),
			fc.constantFrom(
				"http://example.com/x",
				"ftp://x",
				"https://u:p@x.example",
				"javascript:alert(1)",
				`https://x.example/${"a".repeat(2100)}`,
			),
			fc.integer(),
			fc.constant(null),
		)
		.filter((webhook) => typeof webhook !== "string" || webhookUrlProblem(webhook) !== null)
		.map((webhook) => ({
			label: "webhook",
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: "echo" }],
				["webhook", { json: webhook }],
			],
		})),
	// webhook_events without a webhook, or invalid
	fc
		.oneof(
			fc.constant(["completed"]),
			fc.array(fc.constantFrom("start", "progress", "completed", "bogus"), { maxLength: 4 }),
			fc.string(),
			fc.constant(null),
		)
		.map((events) => ({
			label: "webhook_events",
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: "echo" }],
				["webhook_events", { json: events }],
			],
			code: "invalid_request",
		})),
	// input that the type's own schema refuses
	fc
		.oneof(
			fc
				.oneof(
					fc.integer({ max: -1 }),
					fc.integer({ min: 900_001 }),
					fc.integer({ min: 0, max: 1000 }).map((n) => n + 0.5),
					fc.string(),
					fc.constant(null),
					fc.boolean(),
				)
				.map((ms) => ["sleep", { ms }]),
			// (null is no longer refused: sleep and hang treat it as "no input")
			fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { maxLength: 3 })).map((input) => ["sleep", input]),
			fc
				.oneof(fc.integer({ min: 11 }), fc.integer({ max: -1 }), fc.string(), fc.constant(undefined))
				.map((ft) => ["flaky", ft === undefined ? { ms: 1 } : { fail_times: ft }]),
			fc.integer({ min: 1001, max: 5000 }).map((n) => ["fail", { message: "m".repeat(n) }]),
			fc.oneof(fc.string(), fc.integer(), fc.constant(null)).map((p) => ["fail", { permanent: p }]),
			fc.oneof(fc.integer(), fc.string(), fc.constant([])).map((input) => ["hang", input]),
		)
		.map(([type, input]) => ({
			label: `input of ${type as string}`,
			entries: (id: string): Entry[] => [
				["id", { json: id }],
				["type", { json: type }],
				["input", { json: input }],
			],
			code: "invalid_input",
		})),
	// nesting past 64 levels inside input
	deepJson.map((deep) => ({
		label: "deep input",
		entries: (id: string): Entry[] => [
			["id", { json: id }],
			["type", { json: "echo" }],
			["input", { raw: deep }],
		],
		code: "json_too_deep",
	})),
	// a huge field: over 128 KB is 413, under it the field is refused
	huge.map((h) => ({
		label: `huge type (${h.length} chars)`,
		entries: (id: string): Entry[] => [
			["id", { json: id }],
			["type", { json: h }],
			["input", { json: 1 }],
		],
		status: [400, 413],
	})),
	huge.map((h) => ({
		label: `huge unknown field (${h.length} chars)`,
		entries: (id: string): Entry[] => [
			["id", { json: id }],
			["type", { json: "echo" }],
			["junk", { json: h }],
		],
		status: [400, 413],
	})),
);

const submitCase: fc.Arbitrary<Case> = fc
	.record({
		bad: badSubmission,
		contentType: validJsonType,
		// Mostly no Prefer or a valid one, so the body's own problem is what gets it refused.
		prefer: fc.oneof(
			{ arbitrary: fc.constant(undefined), weight: 6 },
			{ arbitrary: fc.constantFrom("wait=0", "wait=5", "respond-async", "respond-async, wait=3", "handling=lenient"), weight: 3 },
			{ arbitrary: badPrefer, weight: 1 },
		),
		ip: uniqueIp,
		noise,
		stream: fc.boolean(),
	})
	.map(({ bad, contentType, prefer, ip, noise, stream }): Case => {
		const id = newId("fuzz");
		const text = objectText(bad.entries(id));
		const headers: [string, string][] = [["content-type", contentType], ["cf-connecting-ip", ip], ...noise];
		if (prefer !== undefined) headers.push(["prefer", prefer]);
		return {
			group: "POST /v1/tasks (invalid field)",
			method: "POST",
			path: "/v1/tasks",
			headers,
			body: stream ? { kind: "stream", text, chunk: 4096 } : { kind: "text", text },
			allowed: [400, 413, 415, 422],
			refusedId: id,
		};
	});

/** A valid body refused for its headers: wrong content type (415; 400 as multipart) or a bad Prefer (400). */
const badHeadersCase: fc.Arbitrary<Case> = fc
	.record({ which: fc.constantFrom("type", "prefer", "no-type"), contentType: invalidJsonType, prefer: badPrefer, ip: uniqueIp })
	.map(({ which, contentType, prefer, ip }): Case => {
		const id = newId("fuzz");
		const headers: [string, string][] = [["cf-connecting-ip", ip]];
		if (which === "type") headers.push(["content-type", contentType]);
		if (which === "prefer") headers.push(["content-type", "application/json"], ["prefer", prefer]);
		const multipart = which === "type" && contentType.startsWith("multipart/form-data");
		return {
			group: "POST /v1/tasks (bad headers)",
			method: "POST",
			path: "/v1/tasks",
			headers,
			body: { kind: "text", text: JSON.stringify({ id, type: "echo", input: { ok: true } }) },
			// multipart/form-data is a submit format of its own: a JSON text is not a valid multipart body (400).
			allowed: which === "prefer" || multipart ? [400] : [415],
			code: which === "prefer" ? "invalid_prefer_wait" : multipart ? "invalid_multipart" : "unsupported_media_type",
			refusedId: id,
		};
	});

/** Whole bodies that are not a submission at all. */
type RawBody = { body: Body; id?: string; code?: string };
const rawBodyCase: fc.Arbitrary<Case> = fc
	.record({
		body: fc.oneof<fc.Arbitrary<RawBody>[]>(
			fc.jsonValue({ maxDepth: 6 }).map((v): { body: Body; id?: string; code?: string } => ({ body: { kind: "text", text: jsonText(v) } })),
			fc
				.jsonValue()
				.filter((v) => typeof v !== "object" || v === null || Array.isArray(v))
				.map((v) => ({ body: { kind: "text", text: jsonText(v) } as Body, code: "invalid_request" })),
			nasty
				.filter((s) => {
					try {
						JSON.parse(s);
						return false;
					} catch {
						return true;
					}
				})
				.map((text) => ({ body: { kind: "text", text } as Body, code: "invalid_json" })),
			fc.integer({ min: 1, max: 60 }).map((cut) => {
				const id = newId("fuzz");
				const text = JSON.stringify({ id, type: "echo", input: { a: [1, 2, 3] } });
				return { body: { kind: "text", text: text.slice(0, Math.min(cut, text.length - 1)) } as Body, id, code: "invalid_json" };
			}),
			fc
				.constantFrom(
					"{'type':'echo'}",
					'{"type":"echo",}',
					'{"type":NaN}',
					'{"type":"echo"} x',
					"/* c */ {}",
					"\ufeff\ufeff{}",
					"{",
					"",
					"nul",
					"[1,]",
					'{"a":1e99999}',
				)
				.map((text) => ({ body: { kind: "text", text } as Body })),
			fc
				.uint8Array({ minLength: 1, maxLength: 300 })
				.map((bytes) => ({ body: { kind: "bytes", bytes: Uint8Array.from([0xff, ...bytes]) } as Body, code: "invalid_json" })),
			fc.constantFrom([0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]).map((bad) => {
				const id = newId("fuzz");
				const bytes = new TextEncoder().encode(JSON.stringify({ id, type: "echo", input: "X" }));
				const at = bytes.indexOf(0x58); // inside the "X" string
				return {
					body: { kind: "bytes", bytes: Uint8Array.from([...bytes.slice(0, at), ...bad, ...bytes.slice(at + 1)]) } as Body,
					id,
					code: "invalid_json",
				};
			}),
			deepJson.map((text) => ({ body: { kind: "text", text } as Body, code: "json_too_deep" })),
			huge
				.filter((h) => new TextEncoder().encode(h).length > 131_072)
				.map((h) => ({ body: { kind: "stream", text: `"${h}"`, chunk: 16_384 } as Body, code: "payload_too_large" })),
		),
		contentType: validJsonType,
		ip: uniqueIp,
	})
	.map(({ body, contentType, ip }): Case => ({
		group: "POST /v1/tasks (raw body)",
		method: "POST",
		path: "/v1/tasks",
		headers: [
			["content-type", contentType],
			["cf-connecting-ip", ip],
		],
		body: body.body,
		allowed: body.code ? [400, 413] : undefined,
		code: body.code,
		refusedId: body.id,
	}));

// ---- task routes with bad ids, headers and queries ----

const badId: fc.Arbitrary<string> = fc.oneof(
	fc.string({ unit: idChar, minLength: 129, maxLength: 400 }),
	fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).map(encodeURIComponent),
	fc
		.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 })
		.map((bs) => bs.map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`).join("")),
	fc.constantFrom(
		"%",
		"%Z",
		"%ZZ",
		"%E0%A4%A",
		"%00",
		"%2F",
		"a%2Fb",
		"%2e%2e",
		"..",
		".",
		"a/b",
		"a//b",
		"",
		"%20",
		"+",
		"a b",
		"%u0041",
		"%%",
		"😀",
		"é",
		"a?b",
		"a#b",
		"%3F",
		"%23",
		"%C0%AF",
		"%ED%A0%80",
		"__proto__",
		"constructor",
	),
	fc.string({ unit: idChar, minLength: 1, maxLength: 128 }).map((s) => `fz${s}`.slice(0, 128)),
);

const taskRouteCase: fc.Arbitrary<Case> = fc
	.record({
		route: fc.constantFrom("get", "cancel", "events", "ws"),
		id: fc.oneof({ arbitrary: badId, weight: 6 }, { arbitrary: fc.constant("<finished>"), weight: 1 }),
		prefer: fc.option(fc.oneof(fc.constantFrom("wait=0", "wait=1", "wait=60", "respond-async"), badPrefer), { nil: undefined, freq: 2 }),
		lastEventId: fc.option(fc.oneof(junkLastEventId, fc.constantFrom("0", "1", "3", "999")), { nil: undefined, freq: 2 }),
		query: fc.option(
			fc.oneof(
				junkLastEventId.map((v) => `after=${encodeURIComponent(v)}`),
				fc.constantFrom("after=%FF", "after=%", "after=0&after=x", "token=junk", "token=1.abc", "after=", "x=%E0%A4%A"),
				junkHeaderValue.map((v) => `${encodeURIComponent(v)}=${encodeURIComponent(v)}`),
			),
			{ nil: undefined, freq: 2 },
		),
		upgrade: fc.option(fc.constantFrom("websocket", "WebSocket", "h2c", "websocket, h2c", "junk"), { nil: undefined, freq: 2 }),
		wrongMethod: fc.oneof(
			{ arbitrary: fc.constant(undefined), weight: 5 },
			{ arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "OPTIONS", "POST", "GET", "HEAD"), weight: 1 },
		),
		noise,
	})
	.map(({ route, id, prefer, lastEventId, query, upgrade, wrongMethod, noise }): Case => {
		const resolved = id === "<finished>" ? finishedId : id;
		const suffix = route === "get" ? "" : `/${route}`;
		const method = wrongMethod ?? (route === "cancel" ? "POST" : "GET");
		const headers: [string, string][] = [...noise];
		if (prefer !== undefined) headers.push(["prefer", prefer]);
		if (lastEventId !== undefined) headers.push(["last-event-id", lastEventId]);
		if (upgrade !== undefined) headers.push(["upgrade", upgrade]);
		return {
			group: `${route} /v1/tasks/:id`,
			method,
			path: `/v1/tasks/${resolved}${suffix}${query === undefined ? "" : `?${query}`}`,
			headers,
			body: method === "GET" || method === "HEAD" ? { kind: "none" } : { kind: "text", text: "junk" },
		};
	});

// ---- POST /process ----

const processCase: fc.Arbitrary<Case> = fc
	.record({
		kind: fc.constantFrom("not-object", "bad-uuid", "bad-ms", "bad-type", "bad-json", "deep", "huge"),
		notObject: fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
		uuid: fc.oneof(
			fc.string({ unit: idChar, minLength: 129, maxLength: 200 }),
			nasty.filter((s) => s !== "" && !/^[A-Za-z0-9._:-]{1,128}$/.test(s)),
		),
		ms: fc.oneof(
			fc.integer({ max: -1 }),
			fc.integer({ min: 900_001 }),
			fc.integer({ min: 0, max: 100 }).map((n) => n + 0.25),
			fc.string(),
			fc.constant(null),
			fc.boolean(),
			fc.constant([1]),
		),
		contentType: invalidJsonType,
		junk: nasty.filter((s) => {
			try {
				JSON.parse(s);
				return false;
			} catch {
				return true;
			}
		}),
		deep: deepJson,
		huge: huge.filter((h) => h.length > 140_000),
		prefer: fc.option(badPrefer, { nil: undefined }),
		ip: uniqueIp,
		noise,
	})
	.map((r): Case => {
		const uuid = newId("fuzz");
		const headers: [string, string][] = [["cf-connecting-ip", r.ip], ...r.noise];
		if (r.prefer !== undefined) headers.push(["prefer", r.prefer]);
		let text: string;
		let refusedId: string | undefined;
		let contentType = "application/json";
		switch (r.kind) {
			case "not-object":
				text = jsonText(r.notObject);
				break;
			case "bad-uuid":
				text = JSON.stringify({ uuid: r.uuid, ms: 1 });
				break;
			case "bad-ms":
				text = JSON.stringify({ uuid, ms: r.ms });
				refusedId = uuid;
				break;
			case "bad-type":
				text = JSON.stringify({ uuid, ms: 1 });
				contentType = r.contentType;
				refusedId = uuid;
				break;
			case "bad-json":
				text = r.junk;
				break;
			case "deep":
				text = `{"uuid":"${uuid}","x":${r.deep}}`;
				refusedId = uuid;
				break;
			default:
				text = JSON.stringify({ uuid, ms: 1, junk: r.huge });
				refusedId = uuid;
		}
		if (contentType) headers.push(["content-type", contentType]);
		return {
			group: "POST /process",
			method: "POST",
			path: "/process",
			headers,
			body: { kind: "text", text },
			allowed: [400, 413, 415],
			refusedId,
			seedEnvelope: true,
		};
	});

// ---- /v1/ws, /health, unknown routes, wrong methods ----

/** Known paths and the methods they serve. */
const KNOWN: [string, string[]][] = [
	["/v1/tasks", ["POST", "GET"]],
	["/v1/tasks/fz-known", ["GET"]],
	["/v1/tasks/fz-known/cancel", ["POST"]],
	["/v1/tasks/fz-known/ws", ["GET"]],
	["/v1/tasks/fz-known/events", ["GET"]],
	["/v1/ws", ["GET"]],
	["/process", ["POST"]],
	["/health", ["GET"]],
	// The dashboard's page (test/worker/dashboard.test.ts).
	["/", ["GET"]],
];

const otherCase: fc.Arbitrary<Case> = fc.oneof(
	// GET /v1/ws with and without a proper upgrade, junk queries and headers
	fc
		.record({
			upgrade: fc.option(fc.constantFrom("websocket", "WEBSOCKET", "h2c", "", "websocket2"), { nil: undefined }),
			query: fc.option(junkHeaderValue, { nil: undefined }),
			noise,
		})
		.map(({ upgrade, query, noise }): Case => ({
			group: "GET /v1/ws",
			method: "GET",
			path: `/v1/ws${query === undefined ? "" : `?${encodeURIComponent(query)}`}`,
			headers: [...(upgrade === undefined ? [] : ([["upgrade", upgrade]] as [string, string][])), ...noise],
			body: { kind: "none" },
			// An Origin header that is not allowed (CORS_ORIGINS) refuses the upgrade itself.
			allowed: upgrade?.toLowerCase() !== "websocket" ? [426] : noise.some(([name]) => name === "origin") ? [101, 403] : [101],
		})),
	// GET /health with junk: always 200 {status: ok, …}
	fc.record({ query: fc.option(junkHeaderValue, { nil: undefined }), noise, head: fc.boolean() }).map(({ query, noise, head }): Case => ({
		group: "GET /health",
		method: head ? "HEAD" : "GET",
		path: `/health${query === undefined ? "" : `?${encodeURIComponent(query)}`}`,
		headers: noise,
		body: { kind: "none" },
		allowed: [200],
	})),
	// unknown routes
	fc
		.record({
			path: fc.oneof(
				fc.constantFrom(
					"/v1",
					"/v1/",
					"/v1/tasks/",
					"/v1/tasks//cancel",
					"/v1/task",
					"/V1/TASKS",
					"/health/",
					"/process/x",
					"//v1/tasks",
					"/v1/tasks/x/cancel/extra",
					"/v1/tasks/x/ws/",
					"/v2/tasks",
					"/v1/ws/x",
					"/favicon.ico",
					"/.env",
					"/v1/tasks/x/events/../../health",
				),
				fc
					.array(fc.oneof(nasty.map(encode), fc.string({ unit: idChar, maxLength: 10 })), { minLength: 1, maxLength: 5 })
					.map((parts) => `/zz/${parts.join("/")}`),
			),
			method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
			noise,
		})
		.map(({ path, method, noise }): Case => ({
			group: "unknown route",
			method,
			path,
			headers: noise,
			body: method === "GET" ? { kind: "none" } : { kind: "text", text: "{}" },
			allowed: [404, 405, 400],
		})),
	// known paths, wrong methods: 405 with Allow
	fc
		.record({ target: fc.constantFrom(...KNOWN), method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"), noise })
		.filter(({ target, method }) => !target[1].includes(method))
		.map(({ target, method, noise }): Case => ({
			group: "wrong method",
			method,
			path: target[0],
			headers: [["content-type", "application/json"], ...noise],
			body: method === "GET" ? { kind: "none" } : { kind: "text", text: '{"type":"echo"}' },
			allowed: [405],
			code: "method_not_allowed",
		})),
);

// ---- the suite ----

beforeAll(async () => {
	const { body } = await submitTask({ id: newId("fuzz-known"), type: "echo", input: { known: true } }, { wait: 20 });
	expect(body.status).toBe("succeeded");
	finishedId = body.id;
	console.log(`fuzz seed ${seed}`);
});

afterAll(() => {
	console.log(
		`fuzz: ${total()} HTTP requests sent (${JSON.stringify(sent)}), ${framesSent} WebSocket frames, ${refusedIds.size} refused ids checked`,
	);
	console.log(`fuzz answers: ${JSON.stringify(Object.fromEntries(Object.entries(answers).sort()))}`);
});

describe("fuzzing every route", () => {
	it("POST /v1/tasks: one invalid field (type, unknown keys, priority, timeouts, webhook, input, nesting, size) → 4xx JSON, nothing created", async () => {
		await fuzz(submitCase, 40);
	}, 120_000);

	it("POST /v1/tasks: a valid body with a wrong content type or a bad Prefer → 415 / 400, nothing created", async () => {
		await fuzz(badHeadersCase, 10);
	}, 60_000);

	it("POST /v1/tasks: random JSON, invalid JSON, invalid UTF-8, deep nesting, streamed oversize bodies", async () => {
		await fuzz(rawBodyCase, 24);
	}, 120_000);

	it("GET/cancel/events/ws of /v1/tasks/:id with bad ids, junk Prefer, Last-Event-ID, queries, Upgrade, wrong methods", async () => {
		await fuzz(taskRouteCase, 32);
	}, 120_000);

	it("POST /process: malformed bodies answer the seed envelope with 4xx, nothing created", async () => {
		await fuzz(processCase, 16);
	}, 120_000);

	it("/v1/ws, /health, unknown routes and wrong methods", async () => {
		await fuzz(otherCase, 16);
	}, 60_000);

	it("every refused submission's id is unknown afterwards", async () => {
		const ids = [...refusedIds];
		expect(ids.length).toBeGreaterThan(200);
		for (let i = 0; i < ids.length; i += BATCH) {
			const statuses = await Promise.all(ids.slice(i, i + BATCH).map(async (id) => [id, (await getTask(id)).res.status] as const));
			for (const [id, status] of statuses) expect(status, `GET ${id}`).toBe(404);
		}
	}, 60_000);

	it("sent at least 1,000 malformed requests across every route", () => {
		expect(total()).toBeGreaterThanOrEqual(1000);
		for (const group of [
			"POST /v1/tasks (invalid field)",
			"POST /v1/tasks (raw body)",
			"get /v1/tasks/:id",
			"cancel /v1/tasks/:id",
			"events /v1/tasks/:id",
			"ws /v1/tasks/:id",
			"POST /process",
			"GET /v1/ws",
			"GET /health",
			"unknown route",
			"wrong method",
		]) {
			expect(sent[group] ?? 0, group).toBeGreaterThan(0);
		}
	});
});

// ---- WebSocket frames ----

const badFrame: fc.Arbitrary<string | Uint8Array> = fc.oneof(
	nasty,
	fc.jsonValue({ maxDepth: 4 }).map(jsonText),
	fc.uint8Array({ minLength: 0, maxLength: 2000 }),
	fc.integer({ min: 65_537, max: 200_000 }).map((n) => `{"type":"subscribe","ids":["${"a".repeat(n)}"]}`),
	huge,
	fc
		.record({
			type: fc.oneof(nasty, fc.constantFrom("subscribe", "unsubscribe", "PING", "pong")),
			ids: fc.jsonValue({ maxDepth: 2 }),
			tokens: fc.jsonValue({ maxDepth: 2 }),
		})
		.map(jsonText),
	fc.record({ type: fc.constantFrom("subscribe", "unsubscribe"), ids: fc.array(badId, { minLength: 0, maxLength: 5 }) }).map(jsonText),
	fc
		.record({
			ids: fc.array(
				fc.string({ unit: idChar, minLength: 1, maxLength: 40 }).map((s) => `fzws${s}`),
				{ minLength: 1, maxLength: 8 },
			),
			tokens: fc.jsonValue({ maxDepth: 2 }),
		})
		.map(({ ids, tokens }) => jsonText({ type: "subscribe", ids, tokens })),
	fc.constantFrom(
		jsonText({ type: "subscribe", ids: Array.from({ length: 1001 }, (_, i) => `fz-${i}`) }),
		jsonText({ type: "subscribe", ids: ["__proto__", "constructor", "toString"], tokens: { __proto__: "x", constructor: 1 } }),
		'{"type":"subscribe","ids":["__proto__"],"tokens":{"__proto__":"1.abc"}}',
		jsonText({ type: "unsubscribe", ids: ["never-subscribed"] }),
		'{"type":"ping"', // truncated
		'{"type":"ping","extra":1}',
		' {"type":"ping"}',
		"null",
		"[]",
		'"ping"',
	),
);

function sendFrame(socket: RecordingSocket, frame: string | Uint8Array): void {
	framesSent++;
	socket.ws.send(frame);
}

describe("bad WebSocket frames", () => {
	it("the multi-task hub (/v1/ws) survives random, binary, huge and mis-shaped frames: ping still pongs, subscriptions still work", async () => {
		const hub = await openSocket("/v1/ws");
		let probes = 0;
		await fc.assert(
			fc.asyncProperty(fc.array(badFrame, { minLength: 10, maxLength: 10 }), async (frames) => {
				for (const frame of frames) sendFrame(hub, frame);
				// The runtime answers pings itself, so a pong proves the socket, not the object:
				// an unsubscribe is answered by the object, after every frame sent before it.
				await hub.ping(10_000);
				const probe = `probe-${++probes}`;
				const from = hub.frames.length;
				hub.send({ type: "unsubscribe", ids: [probe] });
				await hub.waitFor((f) => f.type === "unsubscribed" && f.ids?.[0] === probe, `the answer to ${probe}`, 10_000, from);
				expect(hub.close, "the hub closed the socket").toBeNull();
			}),
			{ numRuns: 40, seed, endOnFailure: true },
		);
		// Only JSON frames came back, and errors in the envelope.
		for (const f of hub.frames) {
			expect(f.type).not.toBe("unparsable");
			if (f.type === "error") expect(typeof f.error?.code === "string" && typeof f.error?.message === "string").toBe(true);
		}
		expect(hub.frames.some((f) => f.type === "error" && f.error.code === "bad_frame")).toBe(true);

		// Still a working hub: follow a real task to its end.
		const id = newId("fuzz");
		await submitTask({ id, type: "sleep", input: { ms: 300 } });
		const from = hub.frames.length;
		hub.send({ type: "subscribe", ids: [id] });
		await hub.waitFor((f) => f.type === "snapshot" && f.task_id === id, "the snapshot", 10_000, from);
		await hub.waitFor((f) => f.type === "succeeded" && f.task_id === id, "the task's end", 10_000, from);
		hub.shut();
	}, 120_000);

	it("a per-task socket answers each bad frame with one bad_frame error, still pongs, and still delivers the task's end", async () => {
		const id = newId("fuzz");
		// Runs for 30 s unless canceled, so the socket stays open through the fuzzing.
		await submitTask({ id, type: "sleep", input: { ms: 30_000 } });
		const socket = await openSocket(`/v1/tasks/${id}/ws`);
		await socket.waitFor((f) => f.type === "snapshot", "the snapshot");
		let bad = 0;
		await fc.assert(
			fc.asyncProperty(fc.array(badFrame, { minLength: 10, maxLength: 10 }), async (frames) => {
				for (const frame of frames) {
					sendFrame(socket, frame);
					if (frame !== '{"type":"ping"}') bad++;
				}
				await socket.ping(10_000);
				expect(socket.close, "the task's object closed the socket").toBeNull();
			}),
			{ numRuns: 20, seed, endOnFailure: true },
		);
		await socket.ping();
		const errors = () => socket.frames.filter((f) => f.type === "error");
		// One error reply per bad frame (the runtime answers pings itself).
		await socket.waitFor(() => errors().length >= bad, `${bad} error frames`, 10_000);
		expect(errors().length).toBe(bad);
		for (const e of errors()) expect(e.error).toMatchObject({ code: "bad_frame", message: expect.any(String) });

		// The object still works: a cancel reaches the socket as the task's end.
		const canceled = await exports.default.fetch(`${ORIGIN}/v1/tasks/${id}/cancel`, { method: "POST" });
		expect(canceled.status).toBe(200);
		await socket.waitFor((f) => f.type === "canceled", "the canceled event", 10_000);
		expect((await socket.closed()).code).toBe(1000);
	}, 120_000);
});

describe("after the fuzzing", () => {
	it("still serves a normal task end to end, over every channel, and /health is 200", async () => {
		const id = newId("fuzz-after");
		const submitted = await submitTask({ id, type: "sleep", input: { ms: 500 } });
		expect(submitted.res.status).toBe(202);
		const socket = await openSocket(`/v1/tasks/${id}/ws?after=0`);
		const events = await exports.default.fetch(`${ORIGIN}/v1/tasks/${id}/events?after=0`);
		expect(events.status).toBe(200);

		const done = await settled(id, 20);
		expect(done).toMatchObject({ id, status: "succeeded", attempts: 1, output: { slept_ms: 500 } });
		await socket.closed();
		expect(
			socket
				.events()
				.map((e) => e.type)
				.filter((t) => t !== "progress"),
		).toEqual(["queued", "running", "succeeded"]);
		const sse = await readSse(events.body!, (frames) => frames.some((f) => f.event === "succeeded"));
		expect(sse.some((f) => f.event === "succeeded")).toBe(true);

		const seedId = newId("fuzz-after");
		const seeded = await exports.default.fetch(`${ORIGIN}/process`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ uuid: seedId, ms: 10 }),
		});
		expect(seeded.status).toBe(200);
		expect(await seeded.json()).toMatchObject({ success: true, code: 0, data: { uuid: seedId, result: { slept_ms: 10 } } });

		const health = await exports.default.fetch(`${ORIGIN}/health`);
		expect(health.status).toBe(200);
		const report = (await health.json()) as Record<string, unknown>;
		expect(report).toMatchObject({ status: "ok" });
		expect(typeof report.queue_size).toBe("number");
		await sleep(0);
	}, 60_000);
});
