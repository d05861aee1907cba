/** A fresh task id: a UUID, behind `prefix-` when a prefix is given. */
export function newId(prefix?: string): string {
	const uuid = crypto.randomUUID();
	return prefix === undefined ? uuid : `${prefix}-${uuid}`;
}
