/** The API keys the worker-keyed project runs with (vitest.config.ts): long enough that a log line can only contain one by carrying it. */
export const KEYED_API_KEYS = ["edgetask-test-key-7Qm2Vx9Lp4Zr8Tn6Bd3", "edgetask-test-key-3Hs5Kd1Wj7Yb2Fc9Gx4"] as const;

/** `Authorization` with the first key. */
export const AUTH = { authorization: `Bearer ${KEYED_API_KEYS[0]}` };
