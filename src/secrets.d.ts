// Secrets are set with `wrangler secret put` (or .dev.vars locally), so `wrangler types` cannot
// see them in wrangler.toml; they are declared here, and only here.
interface Env {
	/** Signs webhooks (Standard Webhooks). `whsec_<base64>` or any string. */
	WEBHOOK_SECRET?: string;
	/** Comma-separated API keys; when set, requests need `Authorization: Bearer <key>`. */
	API_KEYS?: string;
	/** Signs per-task capability tokens; defaults to a key derived from API_KEYS. */
	TOKEN_SECRET?: string;
	/** Bearer tokens for origins, a JSON object `{ "<origin>": "<token>" }`; sent as `Authorization`. */
	ORIGIN_TOKENS?: string;
}
