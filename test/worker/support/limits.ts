/**
 * The submission rate limit in tests. SUBMIT_LIMITER in wrangler.toml admits thousands per
 * window; vitest.config.ts adds a real local limiter of TIGHT_LIMIT per minute, which tests of
 * the 429 path pass as SUBMIT_LIMITER (a real binding, simulated by the runtime like the other).
 */
import { env } from "cloudflare:workers";
import { sleep } from "../../shared/waits";
import type { EnvOverrides } from "./api";

export const TIGHT_LIMIT = 3;
const TIGHT_PERIOD_S = 60;

export const tightLimiter: EnvOverrides = {
	SUBMIT_LIMITER: (env as unknown as { TIGHT_SUBMIT_LIMITER: RateLimit }).TIGHT_SUBMIT_LIMITER,
};

/**
 * The local limiter counts in windows aligned to the clock: a test that fills one and expects
 * the next request refused must not straddle a window's end. Waits out the last `marginS`.
 */
export async function awayFromWindowEnd(marginS = 5): Promise<void> {
	const intoWindowMs = Date.now() % (TIGHT_PERIOD_S * 1000);
	const leftMs = TIGHT_PERIOD_S * 1000 - intoWindowMs;
	if (leftMs < marginS * 1000) await sleep(leftMs + 50);
}
