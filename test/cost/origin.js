/**
 * The origin behind the cost project's `http` tasks (ORIGINS.model): a model server that takes
 * `{ "ms": N }`, works N ms and answers JSON. It runs as a worker of its own (plain JavaScript:
 * auxiliary workers are not compiled), and the cost project routes the worker's outbound fetches
 * to it (`outboundService`), so no port is needed.
 */
export default {
	/** @param {Request} request */
	async fetch(request) {
		const body = await request.json().catch(() => ({}));
		const ms = typeof body.ms === "number" && body.ms >= 0 ? Math.min(body.ms, 600_000) : 0;
		await new Promise((resolve) => setTimeout(resolve, ms));
		return Response.json({ worked_ms: ms });
	},
};
