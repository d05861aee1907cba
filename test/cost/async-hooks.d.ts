/** The part of `node:async_hooks` the meter uses (the cost project runs with the `nodejs_als` flag). */
declare module "node:async_hooks" {
	export class AsyncLocalStorage<T> {
		run<R>(store: T, fn: () => R): R;
		getStore(): T | undefined;
	}
}
