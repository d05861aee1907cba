import type { Context } from "hono";
import type { Task } from "../task/model";
import type { App } from "./app";
import { apiKeys, taskToken } from "./auth";

/** Token lifetime past the task's TTL (counted from now): its run and a day to spare for slow readers. */
const TOKEN_SLACK_S = 86_400;

/**
 * The task plus where to find it again. When API keys are in force the URLs carry a token for
 * this task alone, so they can be handed to a browser.
 */
export async function withUrls(c: Context<App>, task: Task) {
	const path = `/v1/tasks/${encodeURIComponent(task.id)}`;
	const query = apiKeys(c.env).length > 0 ? `?token=${await taskToken(c.env, task.id, task.ttl_s + TOKEN_SLACK_S)}` : "";
	const http = new URL(path, c.req.url);
	const ws = new URL(http);
	ws.protocol = http.protocol === "https:" ? "wss:" : "ws:";
	return {
		...task,
		urls: {
			get: `${http.href}${query}`,
			ws: `${ws.href}/ws${query}`,
			events: `${http.href}/events${query}`,
			cancel: `${http.href}/cancel${query}`,
			output: `${http.href}/output${query}`,
		},
	};
}
