import { TooManyRequestsError } from "@strata/core";

/**
 * The one concurrency limit of insert (-maxConcurrentInserts), shared by every ingestion
 * handler: remote write and every import format. A request holds a slot from before its body is
 * read until its rows are acknowledged; past the limit it waits, and gives up with 429 after
 * -insert.maxQueueDuration.
 */
export class ConcurrencyLimiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueueMs: number,
  ) {}

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves when the caller holds a slot (it must call release()); rejects with 429 after the queue deadline. */
  acquire(): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        clearTimeout(t);
        this.active++;
        resolve();
      };
      const t = setTimeout(() => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        reject(
          new TooManyRequestsError(
            `cannot process the request within -insert.maxQueueDuration=${this.maxQueueMs}ms: -maxConcurrentInserts=${this.max} requests are in progress`,
          ),
        );
      }, this.maxQueueMs);
      this.queue.push(go);
    });
  }

  release(): void {
    this.active--;
    this.queue.shift()?.();
  }
}
