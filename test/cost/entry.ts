/**
 * The cost project's main module: the worker exactly as src/index.ts builds it, with every
 * billed operation counted (test/cost/instrument.ts). Durable Object classes are exported under
 * the names wrangler.toml binds, so the runtime instantiates the counted subclasses.
 */
import worker, * as app from "../../src/index";
import { instrument, installLogCount, installTimerAndFetchHolds, instrumentWorker } from "./instrument";

installTimerAndFetchHolds();
installLogCount();

export const TaskCoordinator = instrument(app.TaskCoordinator, "TaskCoordinator");
export const StatsShard = instrument(app.StatsShard, "StatsShard");
export const SubscriptionHub = instrument(app.SubscriptionHub, "SubscriptionHub");
export const WorkLane = instrument(app.WorkLane, "WorkLane");
export const FileLease = instrument(app.FileLease, "FileLease");
export const Scheduler = instrument(app.Scheduler, "Scheduler");

/** What src/index.ts exports, so a test can check that every Durable Object class above is the counted one. */
export const uninstrumented = app;

export default instrumentWorker(worker as ExportedHandler<Env, unknown>);
