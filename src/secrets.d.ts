// Secrets are set with `wrangler secret put` (or .dev.vars locally), so `wrangler types` cannot
// see them in wrangler.toml; they are declared here, and only here.
interface Env {
	/** Signs webhooks (Standard Webhooks). `whsec_<base64>` or any string. */
	WEBHOOK_SECRET?: string;
}
