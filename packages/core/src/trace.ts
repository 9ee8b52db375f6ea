/**
 * Query tracing as VictoriaMetrics offers it (`trace=1`, lib/querytracer): a tree of steps, each
 * with its message and duration, returned beside the answer so a slow query explains itself.
 *
 * A step starts when it is made (`child`) and ends with `done`; its duration is measured with
 * performance.now(). Steps run one after another unless their parent says otherwise: a parent
 * whose children run concurrently (a fan-out) has `in parallel` in its message, and only there
 * may the children's durations add up to more than the parent's.
 *
 * `Trace.off` is the null object: every method does nothing, so code traces unconditionally and
 * pays nothing when the query is not traced.
 */
export interface TraceJson {
  readonly duration_msec: number;
  readonly message: string;
  readonly children: readonly TraceJson[];
}

export class Trace {
  /** The disabled trace: `child` returns it, the rest does nothing. */
  static readonly off: Trace = new Trace("", false);

  private start = performance.now();
  private end: number | undefined;
  private readonly children: Trace[] = [];

  private constructor(
    private message: string,
    readonly enabled: boolean,
  ) {}

  /** The root of a new trace (enabled), started now. */
  static start(message: string): Trace {
    return new Trace(message, true);
  }

  /** A step under this one, started now. */
  child(message: string): Trace {
    if (!this.enabled) return this;
    const c = new Trace(message, true);
    this.children.push(c);
    return c;
  }

  /** Ends the step, optionally replacing its message with what is known at its end. Idempotent. */
  done(message?: string): void {
    if (!this.enabled || this.end !== undefined) return;
    this.end = performance.now();
    if (message !== undefined) this.message = message;
  }

  /**
   * A finished step measured elsewhere (e.g. summed over many short waits, or reported by a
   * storage node), recorded with its duration; returned so that steps measured there too can
   * hang under it.
   */
  addDone(message: string, durationMs: number): Trace {
    if (!this.enabled) return this;
    const c = new Trace(message, true);
    c.start = 0;
    c.end = Math.max(0, durationMs);
    this.children.push(c);
    return c;
  }

  toJSON(): TraceJson {
    // A step still running (an abandoned branch) reports the time until now.
    const end = this.end ?? performance.now();
    return { duration_msec: end - this.start, message: this.message, children: this.children.map((c) => c.toJSON()) };
  }
}
