/**
 * Rate-limits a stream of changes to one flush per `intervalMs`: a change inside the window only
 * marks the value dirty, and one trailing flush sends the latest. Used for `ctx.progress`, which
 * a processor may call thousands of times a second; subscribers get at most a few events.
 */
export class Throttle {
	private lastFlushAt = 0;
	private timer = 0;

	constructor(
		private readonly intervalMs: number,
		private readonly flush: () => void,
	) {}

	/** The value changed: flush now if the window allows, else make sure a trailing flush is due. */
	changed(): void {
		const wait = this.lastFlushAt + this.intervalMs - Date.now();
		if (wait <= 0) {
			// A trailing flush that is running late (a busy runtime) is overtaken by this one.
			this.cancel();
			this.send();
		} else if (!this.timer) {
			this.timer = setTimeout(() => {
				this.timer = 0;
				this.send();
			}, wait);
		}
	}

	/** The latest value went out with another change: drop a pending flush and start the window now. */
	sentElsewhere(): void {
		this.cancel();
		this.lastFlushAt = Date.now();
	}

	/** Drops a pending trailing flush (the stream ended; nothing may follow it). */
	cancel(): void {
		clearTimeout(this.timer);
		this.timer = 0;
	}

	private send(): void {
		this.lastFlushAt = Date.now();
		this.flush();
	}
}
