/**
 * Origins: the backends edgetask fronts (`ORIGINS`, `ORIGIN_TOKENS`) and the `http` task type
 * that calls them. The scheduler asks `httpTaskLane` / `originLane` which lane an http task waits in.
 */
export { findOrigin, originLane, origins, type Origin } from "./config";
export { http, httpTaskLane, HttpInput } from "./http";
