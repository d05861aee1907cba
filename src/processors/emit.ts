import { z } from "zod";
import { defineProcessor } from "./types";

/**
 * `emit` (a test processor, registered with the fault processors): returns JSON of a chosen size
 * and/or a file of a chosen size, written from bytes or from a stream, so tests can drive the
 * output limits and file outputs end to end. File byte i is `i % 251`, so readers can check it.
 */
export const emit = defineProcessor({
	input: z.strictObject({
		json_bytes: z
			.number()
			.int()
			.min(0)
			.max(8 * 1024 * 1024)
			.optional(),
		file_bytes: z
			.number()
			.int()
			.min(0)
			.max(64 * 1024 * 1024)
			.optional(),
		stream: z.boolean().default(false),
		content_type: z.string().max(200).default("application/octet-stream"),
		bigint: z.boolean().default(false),
	}),
	max_attempts: 1,
	async run(input, ctx) {
		if (input.bigint) return { n: BigInt(1) };
		const json = input.json_bytes === undefined ? null : "x".repeat(input.json_bytes);
		if (input.file_bytes === undefined) return { data: json };
		const file = await ctx.files.put(input.stream ? patternStream(input.file_bytes) : pattern(0, input.file_bytes), {
			content_type: input.content_type,
		});
		return json === null ? file : { file, data: json };
	},
});

function pattern(from: number, length: number): Uint8Array {
	const bytes = new Uint8Array(length);
	for (let i = 0; i < length; i++) bytes[i] = (from + i) % 251;
	return bytes;
}

/** The same bytes as `pattern`, in 1 MiB chunks of a stream of unknown length. */
function patternStream(total: number): ReadableStream<Uint8Array> {
	let sent = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (sent >= total) {
				controller.close();
				return;
			}
			const n = Math.min(1024 * 1024, total - sent);
			controller.enqueue(pattern(sent, n));
			sent += n;
		},
	});
}
