/**
 * Exponential backoff, the one formula behind every retry in edgetask (task attempts, queue
 * hand-overs, lost-message re-sends, webhook deliveries): `baseMs × 2^(n−1)` for retry number n
 * (1 = first retry), capped at `capMs`. With `jitter`, a uniformly random delay up to that value
 * ("full jitter"), so retries of many tasks that failed together do not arrive together.
 */
export function backoffMs(retry: number, { baseMs, capMs, jitter = false }: { baseMs: number; capMs: number; jitter?: boolean }): number {
	const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1));
	return jitter ? Math.round(Math.random() * ceiling) : ceiling;
}
