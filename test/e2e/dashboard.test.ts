/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a
 * `wrangler dev` with API keys on, `sleep` limited to two at a time (so tasks wait in line with a
 * queue position) and one pull-worker type.
 * One page, used the way a person would, step by step: the key typed once (a wrong one refused)
 * and kept for the tab; a task submitted from the form whose progress bar moves and finishes; a
 * task submitted elsewhere appearing and changing without a reload; one canceled from its row;
 * queue positions moving live; an image resized from a file and shown; a task's detail with its
 * fields, input, output and every event, live while it runs, reached by keyboard; the list's
 * filters and pages, kept in the address; text contrast; one WebSocket for every live update;
 * and after a reload the first task still in the list. Screenshots of each step go to
 * artifacts/dashboard/ (gitignored).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page, Request as PageRequest } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Client, type TaskRow } from "../../clients/js/src/index";
import { launchBrowser, root } from "./browser";
import { startDevServer, tempDir, type DevServer } from "./helpers";

const ARTIFACTS = join(root, "artifacts", "dashboard");
const KEY = `dash-${crypto.randomUUID()}`;
const PULL_TYPE = "gpu.render";

let server: DevServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let browser: Browser;
let page: Page;
let api: Client;
const sockets: string[] = [];
const pageErrors: string[] = [];
/** Requests for a task's event stream (the detail's history) not yet finished. */
const openStreams = new Set<PageRequest>();

beforeAll(async () => {
	mkdirSync(ARTIFACTS, { recursive: true });
	dir = await tempDir("edgetask-e2e-dashboard");
	[server, browser] = await Promise.all([
		startDevServer({
			persistTo: dir.path,
			vars: {
				API_KEYS: KEY,
				// Tasks of a type limited to two at a time wait in line with a queue position.
				CONCURRENCY: JSON.stringify({ sleep: 2 }),
				WORKER_TYPES: JSON.stringify({ [PULL_TYPE]: { lease_s: 30 } }),
			},
		}),
		launchBrowser(),
	]);
	api = createClient({ baseUrl: server.url, apiKey: KEY });
	page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
	page.on("websocket", (ws) => sockets.push(ws.url()));
	page.on("pageerror", (e) => pageErrors.push(String(e)));
	page.on("console", (m) => {
		// Failed loads are recorded with their URL below.
		if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
	});
	page.on("response", (r) => {
		if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
	});
	page.on("request", (r) => {
		if (/\/v1\/tasks\/[^/]+\/events/.test(r.url())) openStreams.add(r);
	});
	page.on("requestfinished", (r) => openStreams.delete(r));
	page.on("requestfailed", (r) => openStreams.delete(r));
});

afterAll(async () => {
	await browser?.close();
	await server?.stop();
	await dir?.remove();
});

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
const statusOf = (id: string) => row(id).getAttribute("data-status");
const barOf = (id: string) =>
	row(id)
		.locator("progress")
		.evaluate((b: HTMLProgressElement) => b.value);
const cell = (id: string, n: number) => row(id).locator("td").nth(n).textContent();
const count = async (status: string) => Number(await page.locator(`#counts dd[data-count="${status}"]`).textContent());
const shownIds = () => page.locator("#tasks tbody tr").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.taskId ?? ""));

/** Submits the form with `type` and `input`; returns the new task's id. */
async function submitFromForm(type: string, input: unknown, file?: string): Promise<string> {
	await page.locator("#task-type").selectOption(type);
	await page.getByLabel("Input (JSON)").fill(JSON.stringify(input));
	if (file) await page.getByLabel("Image file (PNG, JPEG or WebP)").setInputFiles(file);
	const status = page.locator("#submit-status");
	await page.getByRole("button", { name: "Submit", exact: true }).click();
	await expect.poll(() => status.getAttribute("data-task-id"), { timeout: 30_000 }).toBeTruthy();
	const id = (await status.getAttribute("data-task-id")) ?? "";
	await page.evaluate(() => document.getElementById("submit-status")?.removeAttribute("data-task-id"));
	return id;
}

/** Every progress value the row's bar shows until the task ends (sampled every 50 ms). */
async function watchBar(id: string, budgetMs: number, onValues?: (seen: Set<number>) => Promise<void>): Promise<number[]> {
	const seen = new Set<number>();
	const deadline = Date.now() + budgetMs;
	while (Date.now() < deadline) {
		seen.add(await barOf(id));
		await onValues?.(seen);
		const status = await statusOf(id);
		if (status !== "queued" && status !== "running") break;
		await page.waitForTimeout(50);
	}
	return [...seen].sort((a, b) => a - b);
}

/** The listing as the API gives it, all of it (newest first). */
async function listed(): Promise<TaskRow[]> {
	return (await api.list({ limit: 500 })).tasks;
}

describe("the dashboard in Chromium, with API keys on", () => {
	it("asks for the key once, refuses a wrong one, and keeps the right one for the tab", async () => {
		await page.goto(`${server.url}/`);
		await expect.poll(() => page.locator("#key-section").isVisible(), { timeout: 20_000 }).toBe(true);
		await shot("01-key");
		await page.getByRole("textbox", { name: "API key" }).fill("not-the-key");
		await page.getByRole("button", { name: "Use this key" }).click();
		await expect.poll(() => page.locator("#key-error").textContent(), { timeout: 20_000 }).toBe("The server refused this key.");
		expect(await page.locator("#connection").textContent()).toBe("Waiting for an API key");
		expect(await page.evaluate(() => sessionStorage.getItem("edgetask.apiKey"))).toBeNull();
		await page.getByRole("textbox", { name: "API key" }).fill(KEY);
		await page.getByRole("button", { name: "Use this key" }).click();
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		expect(await page.locator("#key-section").isHidden()).toBe(true);
		expect(await page.evaluate(() => sessionStorage.getItem("edgetask.apiKey"))).toBe(KEY);
		// Before the key the page's calls were refused: that was the point.
		expect(pageErrors.filter((e) => !e.startsWith("401 "))).toEqual([]);
		pageErrors.length = 0;
		// The types came from the server (the pull type too); the counts are numbers.
		expect(await page.locator("#task-type option").evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(
			expect.arrayContaining(["sleep", "image.resize", "checksum", PULL_TYPE]),
		);
		await expect.poll(() => page.locator('#counts dd[data-count="queued"]').textContent()).toMatch(/^\d+$/);
		// Every form control has a name for keyboard and screen-reader users.
		const unlabelled = await page.evaluate(() =>
			[...document.querySelectorAll("input, select, textarea")]
				.filter((c) => (c as HTMLInputElement).labels?.length === 0 && !c.getAttribute("aria-label"))
				.map((c) => c.id),
		);
		expect(unlabelled).toEqual([]);
	});

	let first = "";
	it("submits a task from the form and watches its progress bar move, then finish", async () => {
		const succeededBefore = await count("succeeded");
		first = await submitFromForm("sleep", { ms: 4000 });
		const values = await watchBar(first, 30_000, async (seen) => {
			if (seen.size === 3) await shot("02-progress");
		});
		// It moved through values between 0 and 100 (sleep reports ten steps) and ended full.
		expect(values.filter((v) => v > 0 && v < 100).length, `values seen: ${values}`).toBeGreaterThanOrEqual(2);
		await expect.poll(() => statusOf(first), { timeout: 10_000 }).toBe("succeeded");
		expect(await barOf(first)).toBe(100);
		// Its timings: queue, run and total in ms; the run took the 4 s it slept.
		await expect.poll(() => cell(first, 8)).toMatch(/^\d[\d,]*$/);
		expect(Number((await cell(first, 7))?.replaceAll(",", ""))).toBeGreaterThanOrEqual(4000);
		// The counts caught up with its end.
		await expect.poll(() => count("succeeded"), { timeout: 10_000 }).toBe(succeededBefore + 1);
		await shot("03-finished");
	});

	it("shows a task submitted elsewhere, and its changes, without a reload", async () => {
		await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
		// Long enough to still be running when the page has seen it, on a loaded machine too.
		const task = await api.submit("sleep", { ms: 10_000 });
		// The page reads new tasks every few seconds; then the socket carries the task's changes.
		await expect.poll(() => row(task.id).count(), { timeout: 20_000 }).toBe(1);
		const values = await watchBar(task.id, 40_000);
		await expect.poll(() => statusOf(task.id), { timeout: 10_000 }).toBe("succeeded");
		expect(values.filter((v) => v > 0 && v < 100).length, `values seen: ${values}`).toBeGreaterThanOrEqual(2);
		expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
	});

	it("cancels a running task from its row", async () => {
		const id = await submitFromForm("sleep", { ms: 60_000 });
		await expect.poll(() => statusOf(id), { timeout: 20_000 }).toBe("running");
		const cancelButton = () => row(id).getByRole("button", { name: `Cancel task ${id}` });
		expect(await cancelButton().isEnabled()).toBe(true);
		await cancelButton().click();
		await expect.poll(() => statusOf(id), { timeout: 10_000 }).toBe("canceled");
		expect(await cancelButton().isDisabled()).toBe(true);
		expect((await api.get(id)).status).toBe("canceled");
		await shot("04-canceled");
	});

	it("shows waiting tasks' places in the queue, and moves them up live", async () => {
		// sleep runs two at a time on this server: two long ones take the slots, the next ones wait in line.
		const holders = [await api.submit("sleep", { ms: 60_000 }), await api.submit("sleep", { ms: 60_000 })];
		const a = await api.submit("sleep", { ms: 1000 });
		const b = await api.submit("sleep", { ms: 1000 });
		await expect.poll(() => cell(b.id, 4), { timeout: 20_000 }).toBe("1");
		await expect.poll(() => cell(a.id, 4)).toBe("0");
		expect(await statusOf(b.id)).toBe("queued");
		await shot("05-queue");
		await row(a.id)
			.getByRole("button", { name: `Cancel task ${a.id}` })
			.click();
		await expect.poll(() => statusOf(a.id), { timeout: 10_000 }).toBe("canceled");
		await expect.poll(() => cell(b.id, 4), { timeout: 10_000 }).toBe("0");
		expect(await cell(a.id, 4)).toBe("–");
		// A slot frees: B runs, and has no place in line any more.
		await api.cancel(holders[0]?.id ?? "");
		await expect.poll(() => statusOf(b.id), { timeout: 20_000 }).not.toBe("queued");
		expect(await cell(b.id, 4)).toBe("–");
		await api.cancel(holders[1]?.id ?? "");
		await expect.poll(() => statusOf(b.id), { timeout: 20_000 }).toBe("succeeded");
	});

	it("offers a file only for image types, resizes an uploaded image and shows the result", async () => {
		await page.locator("#task-type").selectOption("sleep");
		expect(await page.getByLabel("Image file (PNG, JPEG or WebP)").isVisible()).toBe(false);
		await page.locator("#task-type").selectOption("image.resize");
		expect(await page.getByLabel("Image file (PNG, JPEG or WebP)").isVisible()).toBe(true);
		// The input starts from the type's schema: its required choices filled in, the file left to the picker.
		const start = JSON.parse(await page.getByLabel("Input (JSON)").inputValue()) as Record<string, unknown>;
		expect(start).toMatchObject({ fit: "contain", format: "png" });
		expect(start).not.toHaveProperty("image");
		const id = await submitFromForm("image.resize", { width: 64, fit: "contain", format: "png" }, join(root, "examples/photo.png"));
		await expect.poll(() => statusOf(id), { timeout: 30_000 }).toBe("succeeded");
		await row(id)
			.getByRole("button", { name: `Details of task ${id}` })
			.click();
		const img = page.locator("#output-image");
		await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth), { timeout: 15_000 }).toBe(64);
		expect(await img.getAttribute("alt")).toContain("image/png");
		// The input shows the uploaded file's reference.
		expect(await page.locator("#detail-data pre").first().textContent()).toContain('"$file"');
		await shot("06-image");
		await page.keyboard.press("Escape");
		expect(await page.locator("#detail").isHidden()).toBe(true);
	});

	it("opens a running task's detail by keyboard: fields, input, output, and every event, live over the page's socket", async () => {
		// Long enough that the detail's history read ends while the task still runs, on a loaded machine too.
		const task = await api.submit("sleep", { ms: 10_000 });
		await expect.poll(() => statusOf(task.id), { timeout: 20_000 }).toBe("running");
		await expect.poll(() => barOf(task.id), { timeout: 10_000 }).toBeGreaterThanOrEqual(20);
		const opener = row(task.id).getByRole("button", { name: `Details of task ${task.id}` });
		await opener.focus();
		await page.keyboard.press("Enter");
		expect(await page.locator("#detail").isVisible()).toBe(true);
		expect(await page.evaluate(() => document.activeElement?.id)).toBe("detail-title");
		expect(await page.locator("#detail-title").textContent()).toBe(`Task ${task.id}`);
		// The history: from the first event, while the task still runs.
		await expect.poll(() => page.locator("#detail-events li").first().getAttribute("data-type"), { timeout: 10_000 }).toBe("queued");
		// Its stream is closed once it reaches what the socket delivered: nothing stays open beside the socket...
		await expect.poll(() => openStreams.size, { timeout: 10_000 }).toBe(0);
		expect((await api.get(task.id)).status).toBe("running");
		const eventsWhenClosed = await page.locator("#detail-events li").count();
		// ...and the rest of the task's events still arrive, so they came over the socket.
		await expect.poll(() => page.locator("#detail-events li").last().getAttribute("data-type"), { timeout: 20_000 }).toBe("succeeded");
		expect(await page.locator("#detail-events li").count()).toBeGreaterThan(eventsWhenClosed);
		const seqs = await page.locator("#detail-events li").evaluateAll((lis) => lis.map((li) => Number((li as HTMLElement).dataset.seq)));
		expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
		expect(new Set(seqs).size).toBe(seqs.length);
		expect(seqs[0]).toBe(1);
		expect(await page.locator("#detail-fields").getAttribute("data-status")).toBe("succeeded");
		expect(await page.locator("#detail-fields progress").evaluate((b: HTMLProgressElement) => b.value)).toBe(100);
		await expect.poll(() => page.locator("#output-json").textContent()).toBe(JSON.stringify({ slept_ms: 10_000 }, null, 2));
		expect(await page.locator("#detail-data pre").first().textContent()).toBe(JSON.stringify({ ms: 10_000 }, null, 2));
		// The address names the open task.
		expect(new URL(page.url()).searchParams.get("task")).toBe(task.id);
		await shot("07-detail");
		// "Submit again" takes the task's type and input to the form.
		await page.getByRole("button", { name: "Submit again…" }).click();
		expect(await page.locator("#task-type").inputValue()).toBe("sleep");
		expect(JSON.parse(await page.getByLabel("Input (JSON)").inputValue())).toEqual({ ms: 10_000 });
		// Escape closes the detail and gives focus back to where it was opened.
		await page.locator("#detail-title").focus();
		await page.keyboard.press("Escape");
		expect(await page.locator("#detail").isHidden()).toBe(true);
		expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(`Details of task ${task.id}`);
		expect(new URL(page.url()).searchParams.has("task")).toBe(false);
	});

	it("filters by status and type and pages through older tasks, with the view in the address", async () => {
		const all = await listed();
		expect(all.length).toBeGreaterThanOrEqual(7);
		// Status: only the canceled ones, exactly those the API lists.
		await page.getByLabel("Status").selectOption("canceled");
		const canceled = all.filter((t) => t.status === "canceled").map((t) => t.id);
		await expect.poll(shownIds, { timeout: 10_000 }).toEqual(canceled);
		expect(new URL(page.url()).searchParams.get("status")).toBe("canceled");
		// Type on top of it.
		await page.getByLabel("Status").selectOption("");
		await page.locator("#filter-type").selectOption("sleep");
		const sleeps = all.filter((t) => t.type === "sleep").map((t) => t.id);
		await expect.poll(shownIds, { timeout: 10_000 }).toEqual(sleeps);
		await shot("08-filtered");
		// Pages of two, from an address someone shared: newest first, each task once, to the end.
		await page.goto(`${server.url}/?limit=2`);
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		const newest = (await listed()).map((t) => t.id);
		await expect.poll(shownIds, { timeout: 10_000 }).toEqual(newest.slice(0, 2));
		expect(await page.getByLabel("Per page").inputValue()).toBe("2");
		for (let pages = 2; pages <= Math.ceil(newest.length / 2); pages++) {
			await page.getByRole("button", { name: "Older tasks" }).click();
			await expect.poll(shownIds, { timeout: 10_000 }).toEqual(newest.slice(0, pages * 2));
		}
		expect(await page.getByRole("button", { name: "Older tasks" }).isHidden()).toBe(true);
		await shot("09-paged");
	});

	it("reads nothing while the tab is hidden, and catches up when it is shown again", async () => {
		const reads: string[] = [];
		const onRequest = (r: PageRequest) => {
			const path = new URL(r.url()).pathname;
			if (path === "/v1/tasks" || path === "/health") reads.push(path);
		};
		page.on("request", onRequest);
		const setVisibility = (state: "hidden" | "visible") =>
			page.evaluate((s) => {
				Object.defineProperty(document, "visibilityState", { configurable: true, get: () => s });
				document.dispatchEvent(new Event("visibilitychange"));
			}, state);
		try {
			await setVisibility("hidden");
			reads.length = 0;
			// More than two of the page's 3 s rounds.
			await page.waitForTimeout(7000);
			expect(reads).toEqual([]);
			await setVisibility("visible");
			await expect.poll(() => reads.includes("/v1/tasks") && reads.includes("/health"), { timeout: 10_000 }).toBe(true);
		} finally {
			page.off("request", onRequest);
		}
	});

	it("keeps text at a contrast of at least 4.5:1", async () => {
		await page.goto(`${server.url}/`);
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		await expect.poll(() => page.locator("#tasks tbody tr").count()).toBeGreaterThan(0);
		await row(first)
			.getByRole("button", { name: `Details of task ${first}` })
			.click();
		await expect.poll(() => page.locator("#detail-events li").count(), { timeout: 10_000 }).toBeGreaterThan(0);
		const low = await page.evaluate(() => {
			const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
			const lum = ([r = 0, g = 0, b = 0]: number[]) => {
				const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
				return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
			};
			const background = (e: Element | null): number[] => {
				for (; e; e = e.parentElement) {
					const c = rgb(getComputedStyle(e).backgroundColor);
					if (c.length === 3 || (c[3] ?? 0) > 0) return c;
				}
				return [255, 255, 255];
			};
			const problems: string[] = [];
			const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
			for (let n = walker.nextNode(); n; n = walker.nextNode()) {
				const e = n.parentElement;
				if (!e || !n.textContent?.trim() || !e.checkVisibility() || e.closest(".visually-hidden")) continue;
				const style = getComputedStyle(e);
				// A disabled control's text is exempt (WCAG 1.4.3), and so is opacity-dimmed text only when disabled.
				if (e.closest("button:disabled")) continue;
				const [l1, l2] = [lum(rgb(style.color)), lum(background(e))].sort((a, b) => b - a);
				const ratio = ((l1 ?? 0) + 0.05) / ((l2 ?? 0) + 0.05);
				if (ratio < 4.5) problems.push(`${e.tagName}.${e.className} "${n.textContent.trim().slice(0, 20)}": ${ratio.toFixed(2)}`);
			}
			return problems;
		});
		expect(low).toEqual([]);
	});

	it("used one WebSocket per page load for every live update, and raised no page errors", () => {
		// Three loads (the first, the paged address, the contrast check), one socket each.
		expect(sockets.map((url) => new URL(url).pathname)).toEqual(["/v1/ws", "/v1/ws", "/v1/ws"]);
		expect(pageErrors).toEqual([]);
	});

	it("after a reload keeps the key, finds the first task in the list, and reopens the task in the address", async () => {
		expect(new URL(page.url()).searchParams.get("task")).toBe(first);
		await page.reload();
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		expect(await page.locator("#key-section").isHidden()).toBe(true);
		await expect.poll(() => statusOf(first), { timeout: 15_000 }).toBe("succeeded");
		await expect.poll(() => page.locator("#detail-title").textContent(), { timeout: 15_000 }).toBe(`Task ${first}`);
		await shot("10-reloaded");
	});
});
