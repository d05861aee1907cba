/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a
 * `wrangler dev` with API keys on: the key typed once (kept for the tab), a task submitted from
 * the form whose progress bar moves and finishes, one canceled from its row, an image resized
 * from a file and shown, and after a reload the first task found in the list. One WebSocket
 * carries every live update. Screenshots of each step go to artifacts/dashboard/ (gitignored).
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, tempDir, type DevServer } from "./helpers";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = join(root, "artifacts", "dashboard");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FLAGS = [
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
];
const KEY = `dash-${crypto.randomUUID()}`;

let server: DevServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let browser: Browser;
let page: Page;
const sockets: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
	mkdirSync(ARTIFACTS, { recursive: true });
	dir = await tempDir("edgetask-e2e-dashboard");
	[server, browser] = await Promise.all([
		startDevServer({ persistTo: dir.path, vars: { API_KEYS: KEY } }),
		chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true }),
	]);
	page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
	page.on("websocket", (ws) => sockets.push(ws.url()));
	page.on("pageerror", (e) => pageErrors.push(String(e)));
	page.on("console", (m) => {
		if (m.type() === "error") pageErrors.push(m.text());
	});
});

afterAll(async () => {
	await browser?.close();
	await server?.stop();
	await dir?.remove();
});

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);

/** Submits the form with `type` and `input`; returns the new task's id from the status line. */
async function submitFromForm(type: string, input: unknown, file?: string): Promise<string> {
	await page.locator("#task-type").selectOption(type);
	await page.getByLabel("Input (JSON)").fill(JSON.stringify(input));
	if (file) await page.getByLabel("Image file (PNG, JPEG or WebP)").setInputFiles(file);
	const status = page.locator("#submit-status");
	await page.getByRole("button", { name: "Submit", exact: true }).click();
	// The line says "Submitting…" at once, then which task was made.
	await expect.poll(() => status.textContent(), { timeout: 30_000 }).toMatch(/^Submitted /);
	return ((await status.textContent()) ?? "").replace(/^Submitted /, "").trim();
}

describe("the dashboard in Chromium, with API keys on", () => {
	it("asks for the key once, and every control has a label", async () => {
		await page.goto(`${server.url}/`);
		await expect.poll(() => page.locator("#key-section").isVisible()).toBe(true);
		await shot("1-key");
		await page.getByRole("textbox", { name: "API key" }).fill(KEY);
		await page.getByRole("button", { name: "Use this key" }).click();
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		expect(await page.locator("#key-section").isHidden()).toBe(true);
		expect(await page.evaluate(() => sessionStorage.getItem("edgetask.apiKey"))).toBe(KEY);
		// Before the key the page's first calls were refused (401s in the console): that was the point.
		expect(pageErrors.every((e) => e.includes("401"))).toBe(true);
		pageErrors.length = 0;
		// Types came from the server; counts are numbers.
		expect(await page.locator("#task-type option").allTextContents()).toEqual(expect.arrayContaining(["sleep", "image.resize"]));
		await expect.poll(() => page.locator('#counts dd[data-count="queued"]').textContent()).toMatch(/^\d+$/);
		// Every form control is labelled (keyboard and screen-reader users get a name for each).
		const unlabelled = await page.evaluate(() =>
			[...document.querySelectorAll("input, select, textarea")]
				.filter((c) => (c as HTMLInputElement).labels?.length === 0 && !c.getAttribute("aria-label"))
				.map((c) => c.id),
		);
		expect(unlabelled).toEqual([]);
	});

	let first = "";
	it("submits a task and watches its progress bar move, then finish", async () => {
		first = await submitFromForm("sleep", { ms: 4000 });
		const bar = row(first).locator("progress");
		const seen = new Set<number>();
		const deadline = Date.now() + 30_000;
		while (Date.now() < deadline) {
			seen.add(await bar.evaluate((b: HTMLProgressElement) => b.value));
			if ((await row(first).getAttribute("data-status")) === "succeeded") break;
			if (seen.size === 3) await shot("2-progress");
			await page.waitForTimeout(100);
		}
		const values = [...seen].sort((a, b) => a - b);
		// It moved through intermediate values (the sleep reports 10 steps) and ended full.
		expect(values.filter((v) => v > 0 && v < 100).length, `values seen: ${values}`).toBeGreaterThanOrEqual(2);
		await expect.poll(() => row(first).getAttribute("data-status"), { timeout: 10_000 }).toBe("succeeded");
		expect(await bar.evaluate((b: HTMLProgressElement) => b.value)).toBe(100);
		await expect.poll(() => row(first).locator("td").nth(8).textContent()).toMatch(/^\d[\d,]*$/);
		await shot("3-finished");
	});

	it("cancels a running task from its row", async () => {
		const id = await submitFromForm("sleep", { ms: 60_000 });
		await expect.poll(() => row(id).getAttribute("data-status"), { timeout: 20_000 }).toBe("running");
		await row(id)
			.getByRole("button", { name: `Cancel task ${id}` })
			.click();
		await expect.poll(() => row(id).getAttribute("data-status"), { timeout: 10_000 }).toBe("canceled");
		expect(
			await row(id)
				.getByRole("button", { name: `Cancel task ${id}` })
				.isDisabled(),
		).toBe(true);
		await shot("4-canceled");
	});

	it("offers a file only for image types", async () => {
		await page.locator("#task-type").selectOption("sleep");
		expect(await page.getByLabel("Image file (PNG, JPEG or WebP)").isVisible()).toBe(false);
		await page.locator("#task-type").selectOption("image.resize");
		expect(await page.getByLabel("Image file (PNG, JPEG or WebP)").isVisible()).toBe(true);
		// The input starts from the type's schema: its required choices filled in.
		expect(JSON.parse(await page.getByLabel("Input (JSON)").inputValue())).toMatchObject({ fit: "contain", format: "png" });
	});

	it("resizes an image from a file and shows the result", async () => {
		const id = await submitFromForm("image.resize", { width: 64, fit: "contain", format: "png" }, join(root, "examples/photo.png"));
		await expect.poll(() => row(id).getAttribute("data-status"), { timeout: 30_000 }).toBe("succeeded");
		await row(id)
			.getByRole("button", { name: `Details of task ${id}` })
			.click();
		const img = page.locator("#detail-output img");
		await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth), { timeout: 15_000 }).toBe(64);
		expect(await img.getAttribute("alt")).toContain("image/png");
		// The detail lists the task's events, from the first.
		await expect
			.poll(() => page.locator("#detail-events li").allTextContents())
			.toEqual(expect.arrayContaining([expect.stringMatching(/^#1 queued/), expect.stringMatching(/succeeded/)]));
		await shot("5-image");
		await page.keyboard.press("Escape");
		expect(await page.locator("#detail").isHidden()).toBe(true);
	});

	it("used one WebSocket for every live update, and no page errors", () => {
		expect(sockets.filter((url) => url.endsWith("/v1/ws"))).toHaveLength(1);
		expect(sockets).toHaveLength(1);
		expect(pageErrors).toEqual([]);
	});

	it("after a reload, keeps the key and finds the first task in the list", async () => {
		await page.reload();
		await expect.poll(() => page.locator("#connection").textContent(), { timeout: 20_000 }).toBe("Live");
		expect(await page.locator("#key-section").isHidden()).toBe(true);
		await expect.poll(() => row(first).getAttribute("data-status"), { timeout: 15_000 }).toBe("succeeded");
		await shot("6-reloaded");
	});
});
