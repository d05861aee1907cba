import type { TaskStatus } from "../task/model";

/**
 * What a task's object answers a worker's call with a lease token: `ok` (with the task's status
 * after the call), `lease_lost` (the token is not the current lease; why, for the worker's log),
 * or `unknown` (no such task).
 */
export type LeaseOutcome =
	{ kind: "ok"; status: TaskStatus } | { kind: "lease_lost"; status: TaskStatus; reason: string } | { kind: "unknown" };

export type HeartbeatOutcome = { kind: "ok"; expiresAt: number; cancelRequested: boolean } | Exclude<LeaseOutcome, { kind: "ok" }>;
