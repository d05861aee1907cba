/**
 * The dashboard's built files, by URL path (`/`, `/dashboard/app.js`, `/dashboard/app.js.map`,
 * `/dashboard/style.css`). dashboardFiles.js is generated from dashboard/ by
 * scripts/buildDashboard.mjs (gitignored; wrangler's `[build]` and vitest.config.ts run it), so
 * the files ship inside the Worker's bundle.
 */
export interface DashboardFile {
	/** The Content-Type it is served with. */
	readonly type: string;
	/** A strong ETag of its content, quoted. */
	readonly etag: string;
	readonly body: string;
}

declare const files: Readonly<Record<string, DashboardFile>>;
export default files;
