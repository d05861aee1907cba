import type { Context } from "hono";
import type { Task } from "../task/model";
import type { App } from "./app";
import { apiKeys, taskToken } from "./auth";

/** Token lifetime past the task's TTL (counted from now): its run and a day to spare for slow readers. */
const TOKEN_SLACK_S = 86_400;

/**
 * Where to find task `id` again: its get, ws, events and cancel URLs. When API keys are in force
 * they carry a token for this task alone, valid `tokenTtlS`, so they can be handed to a browser.
 */
export async function taskUrls(c: Context<App>, id: string, tokenTtlS: number) {
	const path = `/v1/tasks/${encodeURIComponent(id)}`;
	const query = apiKeys(c.env).length > 0 ? `?token=${await taskToken(c.env, id, tokenTtlS)}` : "";
	const http = new URL(path, c.req.url).href;
	// The same URL with a WebSocket scheme (http: → ws:, https: → wss:), without parsing it again.
	const ws = `ws${http.slice(4)}`;
	return {
		get: `${http}${query}`,
		ws: `${ws}/ws${query}`,
		events: `${http}/events${query}`,
		cancel: `${http}/cancel${query}`,
		output: `${http}/output${query}`,
	};
}

/** The task plus its URLs (tokens valid for the task's TTL and a day to spare). */
export async function withUrls(c: Context<App>, task: Task) {
	return { ...task, urls: await taskUrls(c, task.id, task.ttl_s + TOKEN_SLACK_S) };
}
