/**
 * The Python worker package as users get it: Python 3.9 syntax throughout, and installable with
 * pip from the repository with no package index (its build backend is in the standard library).
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = join(root, "clients/python");

let dir: { path: string; remove(): Promise<void> };
beforeAll(async () => {
	dir = await tempDir("edgetask-pip");
});
afterAll(async () => {
	await dir?.remove();
});

describe("clients/python", () => {
	it("parses as Python 3.9 (the oldest version it supports)", async () => {
		const script = [
			"import ast, pathlib, sys",
			"files = sorted(pathlib.Path(sys.argv[1]).rglob('*.py'))",
			"assert files, 'no files'",
			"for f in files: ast.parse(f.read_text(encoding='utf-8'), filename=str(f), feature_version=(3, 9))",
			"print(len(files))",
		].join("\n");
		const { stdout } = await run("python3", ["-c", script, pkg]);
		expect(Number(stdout.trim())).toBeGreaterThanOrEqual(8);
	});

	it("installs with pip --no-build-isolation and no package index; the console script runs", async () => {
		const venv = join(dir.path, "venv");
		await run("python3", ["-m", "venv", venv]);
		const pip = await run(join(venv, "bin/pip"), ["install", "--no-index", "--no-build-isolation", pkg], {
			cwd: dir.path,
			timeout: 120_000,
		});
		expect(pip.stdout).toMatch(/Successfully installed edgetask-worker-0\.1\.0/);
		const version = await run(join(venv, "bin/edgetask-worker"), ["--version"], { cwd: dir.path });
		expect(version.stdout.trim()).toBe("edgetask-worker 0.1.0");
		// Imported from the install, not from the repository.
		const where = await run(join(venv, "bin/python"), ["-c", "import edgetask_worker; print(edgetask_worker.__file__)"], { cwd: dir.path });
		expect(where.stdout).toContain(join(venv, "lib"));
	}, 180_000);

	it("the CLI refuses a function it cannot import, with a clear message and exit 2", async () => {
		const failed = await run(
			"python3",
			["-m", "edgetask_worker", "--url", "http://127.0.0.1:9", "--type", "t", "--seed", "no_such_module:process_task"],
			{
				cwd: root,
				env: { ...process.env, PYTHONPATH: pkg },
			},
		).catch((e: { code: number; stderr: string }) => e);
		expect("code" in failed ? failed.code : 0).toBe(2);
		expect("stderr" in failed ? failed.stderr : "").toMatch(/cannot start: ModuleNotFoundError: No module named 'no_such_module'/);
	});
});
