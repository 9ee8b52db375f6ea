/**
 * A counting semaphore whose waiters give up after a deadline: vmauth's -maxConcurrentRequests,
 * -maxConcurrentPerUserRequests and max_concurrent_requests (a request waits up to
 * -maxQueueDuration for a slot, then gets 429).
 */
export class Limiter {
  private used = 0;
  private readonly waiters: { resolve: (ok: boolean) => void; timer: NodeJS.Timeout | undefined }[] = [];

  constructor(readonly capacity: number) {}

  get current(): number {
    return this.used;
  }

  /**
   * Resolves true with a slot taken, or false when none freed up within `maxWaitMs` or
   * `signal` aborted first (the client went away while waiting).
   */
  acquire(maxWaitMs: number, signal?: AbortSignal): Promise<boolean> | boolean {
    if (this.used < this.capacity) {
      this.used++;
      return true;
    }
    if (maxWaitMs <= 0 || signal?.aborted) return false;
    return new Promise((resolve) => {
      const w = { resolve, timer: undefined as NodeJS.Timeout | undefined };
      const giveUp = (): void => {
        clearTimeout(w.timer);
        signal?.removeEventListener("abort", giveUp);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      w.timer = setTimeout(giveUp, maxWaitMs);
      signal?.addEventListener("abort", giveUp, { once: true });
      w.resolve = (ok) => {
        signal?.removeEventListener("abort", giveUp);
        resolve(ok);
      };
      this.waiters.push(w);
    });
  }

  release(): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(true); // the slot passes to the waiter
      return;
    }
    this.used--;
  }
}
