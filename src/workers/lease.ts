import { z } from "zod";
import { toBase64Url } from "../lib/base64";
import type { Json, Priority } from "../task/model";

/** The longest a lease request may be held: under common proxy and NAT idle limits. */
export const MAX_LEASE_WAIT_S = 25;

/** A task leased to a worker, as `POST /v1/work/lease` answers it. */
export interface LeaseGrant {
	task: { id: string; type: string; input: Json; attempt: number; priority: Priority };
	lease: { token: string; expires_at: string; heartbeat_s: number };
}

/** What the task's object keeps of the lease it granted: the token is the only credential. */
export interface LeaseState {
	token: string;
	workerId: string;
	/** The lease lapses then unless a heartbeat extends it; the task's alarm is the deadline. */
	expiresAt: number;
	/** What the worker reported with this lease, so a repeated call (a lost answer) is answered alike. */
	reported: "complete" | "fail" | null;
}

/**
 * A new lease token: the attempt it belongs to (for logs and support) and 128 random bits.
 * Opaque to workers; only the task's object compares it, against the one lease it holds.
 */
export function newLeaseToken(attempt: number): string {
	return `${attempt}.${toBase64Url(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** Workers heartbeat every third of the lease: two may be lost before it lapses. */
export function heartbeatS(leaseS: number): number {
	return Math.round((leaseS / 3) * 1000) / 1000;
}

// ---- request bodies ----

const Token = z.string().min(1).max(128);

export const LeaseBody = z.strictObject({
	types: z
		.array(z.string().min(1).max(64))
		.min(1)
		.max(32)
		.refine((t) => new Set(t).size === t.length, "must not repeat a type"),
	worker_id: z.string().min(1).max(128),
	wait_s: z.number().min(0).max(MAX_LEASE_WAIT_S).default(0),
});

export const HeartbeatBody = z.strictObject({
	token: Token,
	progress: z.strictObject({ percent: z.number().min(0).max(100), message: z.string().max(10_000).nullish() }).optional(),
});

export const CompleteBody = z.strictObject({ token: Token, output: z.json() });

export const FailBody = z.strictObject({
	token: Token,
	error: z.strictObject({
		code: z
			.string()
			.min(1)
			.max(64)
			.regex(/^[A-Za-z0-9._:-]+$/, "must be 1-64 characters of A-Z a-z 0-9 . _ : -"),
		message: z.string().max(10_000),
	}),
	retryable: z.boolean().default(true),
});

/** Longest error message a worker's `fail` stores. */
export const MAX_WORKER_ERROR_MESSAGE = 2000;
