/**
 * A webhook receiver on 127.0.0.1 for the tests (Node only: node:http, node:crypto). It answers by
 * path and records every delivery with its Standard Webhooks signature checked independently
 * (HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${body}`; a `whsec_` secret is the base64
 * after the prefix, any other string is its own UTF-8 bytes).
 *
 * A path is behaviours, then an id of the test's: `/ok/<id>` answers 200; `/fail/…` 500 always;
 * `/flaky-N/…` 500 to the first N deliveries of each webhook-id, then 200; `/slow-MS/…` answers
 * after MS milliseconds, `/slow-ok-MS/…` only its 200s, `/slow-first-MS/…` only the first
 * delivery of each webhook-id. They combine: `/slow-first-2000/flaky-2/<id>`.
 * `GET /_deliveries?prefix=/x/` lists the deliveries whose path starts with the prefix (for tests
 * that run inside workerd).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { ReceivedDelivery } from "../shared/webhookDelivery";

export type { ReceivedDelivery };

export interface WebhookReceiver {
	url: string;
	deliveries: ReceivedDelivery[];
	close(): Promise<void>;
}

function keyOf(secret: string): Buffer {
	return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

/** Whether a delivery carries a valid `v1` signature of its id, timestamp and body under `secret`. */
export function signatureValid(headers: Record<string, string | string[] | undefined>, raw: string, secret: string): boolean {
	const expected = createHmac("sha256", keyOf(secret))
		.update(`${String(headers["webhook-id"])}.${String(headers["webhook-timestamp"])}.${raw}`)
		.digest();
	return String(headers["webhook-signature"] ?? "")
		.split(" ")
		.some((part) => {
			const [version, sig] = part.split(",");
			if (version !== "v1" || !sig) return false;
			const got = Buffer.from(sig, "base64");
			return got.length === expected.length && timingSafeEqual(got, expected);
		});
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
	const deliveries: ReceivedDelivery[] = [];
	const server = createServer((req, res) => {
		const url = new URL(req.url ?? "/", "http://receiver");
		if (req.method === "GET" && url.pathname === "/_deliveries") {
			const prefix = url.searchParams.get("prefix") ?? "/";
			res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(deliveries.filter((d) => d.path.startsWith(prefix))));
			return;
		}
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const raw = Buffer.concat(chunks).toString("utf8");
			const path = url.pathname;
			const behaviours = path.split("/").filter(Boolean).slice(0, -1);
			const id = String(req.headers["webhook-id"]);
			const earlier = deliveries.filter((d) => d.path === path && d.headers["webhook-id"] === id).length;
			const number = (pattern: RegExp) => behaviours.map((b) => pattern.exec(b)?.[1]).find((n) => n !== undefined);
			const flaky = number(/^flaky-(\d+)$/);
			const status = behaviours.includes("fail") || (flaky !== undefined && earlier < Number(flaky)) ? 500 : 200;
			const hold =
				number(/^slow-(\d+)$/) ??
				(status === 200 ? number(/^slow-ok-(\d+)$/) : undefined) ??
				(earlier === 0 ? number(/^slow-first-(\d+)$/) : undefined);
			const d: ReceivedDelivery = {
				path,
				headers: req.headers,
				raw,
				receivedAt: Date.now(),
				respondedAt: null,
				status,
				signatureValid: signatureValid(req.headers, raw, secret),
			};
			deliveries.push(d);
			const answer = () => {
				d.respondedAt = Date.now();
				res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "try again");
			};
			if (hold !== undefined) setTimeout(answer, Number(hold));
			else answer();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
	const address = server.address();
	const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
	return {
		url,
		deliveries,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
