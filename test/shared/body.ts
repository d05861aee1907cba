/** A response body as the tests read it: parsed JSON when it is JSON, else the text itself. */
export function jsonOrText(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		// Left as text: the assertion on it will show what came back.
		return text;
	}
}
