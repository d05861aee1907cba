/** Base64 and base64url for byte arrays: the one place the project converts bytes to text and back. */

export function toBase64(bytes: ArrayBuffer | Uint8Array): string {
	const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
	let binary = "";
	// Chunked: spreading a large array into String.fromCharCode overflows the argument limit.
	for (let i = 0; i < view.length; i += 0x8000) binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
	return btoa(binary);
}

/** The bytes of a base64 (or base64url) string; null when it is not valid base64. */
export function fromBase64(text: string): Uint8Array | null {
	try {
		return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
	} catch {
		return null;
	}
}

/** URL-safe base64 without padding (RFC 4648 §5), for tokens in query strings. */
export function toBase64Url(bytes: ArrayBuffer | Uint8Array): string {
	return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
