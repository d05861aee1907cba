import type { OpenApiDocument } from "./document";

/**
 * The `/docs` page: the OpenAPI document rendered on the server as one self-contained HTML page
 * (inline CSS, no script, no fonts or assets from anywhere), so it works offline, behind a
 * firewall and under a strict Content-Security-Policy.
 */

const METHOD_COLOURS: Record<string, string> = { get: "#2563eb", post: "#059669", put: "#d97706", patch: "#d97706", delete: "#dc2626" };

function escape(text: string): string {
	return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Inline `code` and **bold** from the descriptions; everything else is escaped text. */
function prose(text: string | undefined): string {
	if (!text) return "";
	return escape(text)
		.replace(/`([^`]+)`/g, "<code>$1</code>")
		.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

/** Pretty JSON of a schema, with `$ref`s turned into links to the schema's section. */
function schemaBlock(schema: unknown): string {
	const json = escape(JSON.stringify(schema, null, 2));
	return `<pre>${json.replace(/&#34;#\/components\/schemas\/([A-Za-z0-9._-]+)&#34;/g, (_, name: string) => `<a href="#schema-${name}">"${name}"</a>`)}</pre>`;
}

interface Operation {
	operationId: string;
	summary: string;
	description?: string;
	tags: string[];
	parameters?: { name: string; in: string; description: string; required: boolean; schema: unknown }[];
	requestBody?: { content: Record<string, { schema: unknown }> };
	responses: Record<
		string,
		{ description: string; content?: Record<string, { schema: unknown }>; headers?: Record<string, { description: string }> }
	>;
	security: Record<string, string[]>[];
}

function operationSection(method: string, path: string, op: Operation): string {
	const colour = METHOD_COLOURS[method] ?? "#6b7280";
	const auth = op.security.some((s) => Object.keys(s).length === 0)
		? "no credentials needed"
		: op.security.map((s) => Object.keys(s).join(" + ")).join(" or ");
	const params = op.parameters?.length
		? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th></th><th>description</th></tr>${op.parameters
				.map(
					(p) =>
						`<tr><td><code>${escape(p.name)}</code></td><td>${p.in}</td><td>${p.required ? "required" : ""}</td><td>${prose(p.description)}</td></tr>`,
				)
				.join("")}</table>`
		: "";
	const body = op.requestBody
		? `<h4>Request body</h4>${Object.entries(op.requestBody.content)
				.map(([type, c]) => `<p><code>${escape(type)}</code></p>${schemaBlock(c.schema)}`)
				.join("")}`
		: "";
	const responses = Object.entries(op.responses)
		.map(([status, r]) => {
			const headers = r.headers
				? `<ul>${Object.entries(r.headers)
						.map(([name, h]) => `<li><code>${escape(name)}</code>: ${prose(h.description)}</li>`)
						.join("")}</ul>`
				: "";
			const content = Object.entries(r.content ?? {})
				.map(([type, c]) => `<p><code>${escape(type)}</code></p>${schemaBlock(c.schema)}`)
				.join("");
			return `<details><summary><span class="status s${status[0] ?? ""}">${escape(status)}</span> ${prose(r.description)}</summary>${headers}${content}</details>`;
		})
		.join("");
	return `<section class="op" id="${escape(op.operationId)}">
<h3><span class="method" style="background:${colour}">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
<p class="summary">${prose(op.summary)} <span class="auth">(${escape(auth)})</span></p>
${op.description ? `<p>${prose(op.description)}</p>` : ""}${params}${body}<h4>Responses</h4>${responses}
</section>`;
}

/** The whole page for `doc`. */
export function docsPage(doc: OpenApiDocument): string {
	const byTag = new Map<string, string[]>();
	const index: string[] = [];
	for (const [path, methods] of Object.entries(doc.paths)) {
		for (const [method, value] of Object.entries(methods)) {
			const op = value as Operation;
			const tag = op.tags[0] ?? "other";
			byTag.set(tag, [...(byTag.get(tag) ?? []), operationSection(method, path, op)]);
			index.push(`<li><a href="#${escape(op.operationId)}"><b>${method.toUpperCase()}</b> ${escape(path)}</a></li>`);
		}
	}
	const tags = doc.tags
		.filter((t) => byTag.has(t.name))
		.map((t) => `<h2 id="tag-${escape(t.name)}">${escape(t.name)}</h2><p>${prose(t.description)}</p>${(byTag.get(t.name) ?? []).join("")}`);
	const schemas = Object.entries(doc.components.schemas)
		.map(([name, schema]) => `<section class="schema" id="schema-${escape(name)}"><h3>${escape(name)}</h3>${schemaBlock(schema)}</section>`)
		.join("");
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(doc.info.title)} API</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:980px;margin:0 auto;padding:24px}
nav ul{columns:2;padding-left:18px}
a{color:#1d4ed8;text-decoration:none}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#111827;color:#e5e7eb;padding:12px;border-radius:6px;overflow:auto;max-height:420px}
pre a{color:#93c5fd}
.op,.schema{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:4px 16px 12px;margin:16px 0}
.method{color:#fff;border-radius:4px;padding:2px 8px;font-size:13px}
.summary{margin-top:0}.auth{color:#6b7280;font-size:13px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
details{margin:4px 0}summary{cursor:pointer}
.status{font-weight:600;border-radius:4px;padding:0 6px;background:#e5e7eb}.s2{background:#d1fae5}.s4{background:#fee2e2}.s5{background:#fde68a}.s1{background:#e0e7ff}
</style></head>
<body><main>
<h1>${escape(doc.info.title)} API <small>(OpenAPI ${escape(doc.openapi)})</small></h1>
<p>${prose(doc.info.description)}</p>
<p>The machine-readable document: <a href="/openapi.json"><code>/openapi.json</code></a>.</p>
<nav><ul>${index.join("")}</ul></nav>
${tags.join("")}
<h2 id="schemas">Schemas</h2>
${schemas}
</main></body></html>`;
}
