import { z } from "zod";
import { defineProcessor } from "./types";

/**
 * `checksum`: the hex digest of `text`, hashed `rounds` times (each round hashes the previous
 * digest), the way a key is stretched. The example of README "Add your own task type": it uses
 * every field of a definition, and test/worker/custom-type.test.ts runs this very file.
 */
export const checksum = defineProcessor({
	// Checked at submit: a bad input is a 400 with field paths, and nothing is stored.
	input: z.object({
		text: z.string().max(100_000),
		algorithm: z.enum(["SHA-256", "SHA-384", "SHA-512"]).default("SHA-256"),
		rounds: z.number().int().min(1).max(1_000_000).default(1),
	}),
	// Checked when the run returns: a mismatch fails the task (`invalid_output`).
	output: z.object({ algorithm: z.string(), rounds: z.number(), hex: z.string().regex(/^[0-9a-f]+$/) }),
	// At most 2 checksums run at once across the deployment; the rest wait for a slot.
	concurrency: 2,
	// One attempt may take 60 s unless the task sets timeout_s.
	timeout_s: 60,
	// The same input gives the same answer: a retry cannot help.
	max_attempts: 1,
	async run({ text, algorithm, rounds }, ctx) {
		let digest: ArrayBuffer | Uint8Array = new TextEncoder().encode(text);
		for (let round = 1; round <= rounds; round++) {
			digest = await crypto.subtle.digest(algorithm, digest);
			// Report ten steps, and stop as soon as the task is canceled or times out.
			if (round % Math.ceil(rounds / 10) === 0) {
				ctx.progress((100 * round) / rounds, `round ${round} of ${rounds}`);
				ctx.signal.throwIfAborted();
			}
		}
		const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
		return { algorithm, rounds, hex };
	},
});
