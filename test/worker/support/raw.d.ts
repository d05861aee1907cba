/** Vite's `?raw` imports: a file's text, as the tests that check the README against the source read it. */
declare module "*?raw" {
	const text: string;
	export default text;
}
