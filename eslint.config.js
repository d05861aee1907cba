// Lint the worker's source strictly (types-aware); tests and scripts get the same rules minus
// the ones that fight test code (non-null assertions on values a test has just checked).
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["node_modules/", ".wrangler/", "worker-configuration.d.ts", "bench/results/", "clients/js/dist/"] },
	{
		files: ["src/**/*.ts", "clients/js/**/*.ts", "dashboard/**/*.ts"],
		extends: [tseslint.configs.recommendedTypeChecked],
		languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
		rules: {
			"@typescript-eslint/no-floating-promises": "error",
			"@typescript-eslint/no-explicit-any": "error",
			"@typescript-eslint/no-non-null-assertion": "error",
			"@typescript-eslint/consistent-type-imports": "error",
			"@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
			// Durable Object RPC methods and runtime handlers are async by contract.
			"@typescript-eslint/require-await": "off",
		},
	},
);
