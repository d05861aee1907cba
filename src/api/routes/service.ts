import { healthReport } from "../../health/summary";
import { routes } from "../app";
import { handleProcess } from "../seed";

/** The seed template's endpoint and the service's health. */
export const serviceRoutes = routes();

serviceRoutes.post("/process", handleProcess);

serviceRoutes.get("/health", async (c) => c.json(c.get("access") === "anonymous" ? { status: "ok" } : await healthReport(c.env)));
