import type { LoadBalancingPolicy } from "./config.js";

/** One backend URL of a url_prefix list, with its load and health. */
export class Backend {
  inflight = 0;
  /** Until when (ms since epoch) the backend is skipped after an error; 0: healthy. */
  brokenUntil = 0;
  constructor(readonly url: URL) {}

  isBroken(now: number): boolean {
    return this.brokenUntil > now;
  }
}

/**
 * The backends of one url_prefix and how to pick among them (vmauth's semantics):
 * `least_loaded` starts at a rotating index and takes the first idle healthy backend, else the
 * healthy one with the fewest requests in flight; `first_available` takes the first healthy one
 * in config order. A backend that failed is skipped for `failTimeoutMs`.
 */
export class BackendSet {
  readonly backends: readonly Backend[];
  private next = 0;

  constructor(
    urls: readonly URL[],
    readonly policy: LoadBalancingPolicy,
    private readonly failTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.backends = urls.map((u) => new Backend(u));
  }

  get size(): number {
    return this.backends.length;
  }

  /** A healthy backend with its in-flight count already taken, or undefined when all are broken. `release()` it after. */
  pick(): Backend | undefined {
    const bs = this.backends;
    const now = this.now();
    let chosen: Backend | undefined;
    if (this.policy === "first_available") {
      chosen = bs.find((b) => !b.isBroken(now));
    } else {
      const n = this.next++ % bs.length;
      let min: Backend | undefined;
      for (let i = 0; i < bs.length; i++) {
        const b = bs[(n + i) % bs.length]!;
        if (b.isBroken(now)) continue;
        if (b.inflight === 0) {
          chosen = b;
          this.next = ((n + i) % bs.length) + 1;
          break;
        }
        if (min === undefined || b.inflight < min.inflight) min = b;
      }
      chosen ??= min;
    }
    if (chosen) chosen.inflight++;
    return chosen;
  }

  release(b: Backend): void {
    b.inflight--;
  }

  markBroken(b: Backend): void {
    b.brokenUntil = this.now() + this.failTimeoutMs;
  }
}
