import { z } from "zod";
import { defineProcessor } from "./types";

/** `echo`: returns its input unchanged, at once. */
export const echo = defineProcessor({
	input: z.unknown(),
	run: async (input) => input,
});
