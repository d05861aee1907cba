/**
 * Fetching an input from a URL a client gave us, without becoming a proxy into places the
 * client cannot reach (SSRF): https only, on the default port, to a public host name or a public
 * address. Loopback, private, link-local, shared (CGNAT), documentation and multicast addresses,
 * `localhost` and internal names are refused, at submit and again at every redirect, which is
 * followed by hand (at most MAX_REDIRECTS). A Worker cannot resolve names itself, so a public
 * name that resolves to a private address is left to the platform: Cloudflare's network does
 * not route a Worker's fetch into private ranges.
 */

const MAX_REDIRECTS = 5;

/** A URL that could not be fetched: `status` is the origin's HTTP status, when there was one. */
export class RemoteFetchError extends Error {
	constructor(
		message: string,
		readonly code: string,
		readonly status: number | null,
		readonly retryable: boolean,
	) {
		super(message);
		this.name = "RemoteFetchError";
	}
}

const PRIVATE_V4: [number, number][] = [
	[0x00000000, 8], // "this" network
	[0x0a000000, 8], // private
	[0x64400000, 10], // shared address space (CGNAT)
	[0x7f000000, 8], // loopback
	[0xa9fe0000, 16], // link-local, cloud metadata
	[0xac100000, 12], // private
	[0xc0000000, 24], // IETF protocol assignments
	[0xc0000200, 24], // documentation
	[0xc0a80000, 16], // private
	[0xc6120000, 15], // benchmarking
	[0xc6336400, 24], // documentation
	[0xcb007100, 24], // documentation
	[0xe0000000, 4], // multicast
	[0xf0000000, 4], // reserved, broadcast
];

function ipv4(host: string): number | null {
	const parts = host.split(".");
	if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
	return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** True for a host this service must never fetch from. `host` is as `URL` normalises it. */
export function isPrivateHost(hostname: string): boolean {
	const host = hostname.toLowerCase().replace(/\.$/, "");
	if (host.startsWith("[")) {
		// Only global unicast (2000::/3) is public; mapped, NAT64, unique-local, link-local and loopback are not.
		const first = parseInt(host.slice(1).split(":")[0] || "0", 16);
		return !(first >= 0x2000 && first <= 0x3fff);
	}
	const v4 = ipv4(host);
	if (v4 !== null) return PRIVATE_V4.some(([net, bits]) => v4 >>> (32 - bits) === net >>> (32 - bits));
	if (!host.includes(".")) return true;
	return /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa)$/.test(host);
}

/** Why `url` may not be fetched, or null when it may. */
export function remoteUrlProblem(url: string): string | null {
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		return "must be an absolute https URL";
	}
	if (parsed.protocol !== "https:") return "must be an https URL";
	if (parsed.username || parsed.password) return "must not carry credentials";
	if (parsed.port !== "") return "must use the default https port";
	if (isPrivateHost(parsed.hostname)) return "must name a public host (loopback, private and internal addresses are refused)";
	return null;
}

export interface RemoteBody {
	body: ReadableStream<Uint8Array>;
	/** From Content-Length, when the origin sent one. */
	length: number | null;
	contentType: string;
}

/** GETs `url` (following redirects that stay public), refusing bodies declared larger than `maxBytes`. */
export async function fetchRemote(url: string, opts: { maxBytes: number; signal: AbortSignal }): Promise<RemoteBody> {
	let current = url;
	for (let hop = 0; ; hop++) {
		const problem = remoteUrlProblem(current);
		if (problem) throw new RemoteFetchError(`${hop === 0 ? "The URL" : `Redirect ${hop}`} ${problem}`, "url_refused", null, false);
		let response: Response;
		try {
			response = await fetch(current, { redirect: "manual", signal: opts.signal, headers: { accept: "image/*,*/*;q=0.5" } });
		} catch (e) {
			if (opts.signal.aborted) throw e;
			throw new RemoteFetchError(`GET ${current} failed: ${e instanceof Error ? e.message : String(e)}`, "url_unreachable", null, true);
		}
		if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
			await response.body?.cancel();
			if (hop >= MAX_REDIRECTS)
				throw new RemoteFetchError(`More than ${MAX_REDIRECTS} redirects from ${url}`, "url_unreachable", null, false);
			current = new URL(response.headers.get("location") ?? "", current).href;
			continue;
		}
		if (!response.ok || !response.body) {
			await response.body?.cancel();
			const retryable = response.status >= 500 || response.status === 429 || response.status === 408;
			throw new RemoteFetchError(`GET ${current} answered HTTP ${response.status}`, "url_unreachable", response.status, retryable);
		}
		const declared = response.headers.get("content-length");
		const length = declared !== null && /^\d+$/.test(declared) ? Number(declared) : null;
		if (length !== null && length > opts.maxBytes) {
			await response.body.cancel();
			throw new RemoteFetchError(`${current} is ${length} bytes; at most ${opts.maxBytes} are fetched`, "input_too_large", null, false);
		}
		return {
			body: response.body as ReadableStream<Uint8Array>,
			length,
			contentType: response.headers.get("content-type") ?? "application/octet-stream",
		};
	}
}
