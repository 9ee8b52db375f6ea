import type { Logger } from "@strata/core";

/**
 * Logs at most `perInterval` lines per `intervalMs`; the lines dropped meanwhile are counted and
 * reported with the next line that gets through (`suppressed: n`), so a flood of failed logins
 * cannot fill the disk but is still visible.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perInterval = 10,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(fields: Record<string, unknown>, msg: string): boolean {
    const t = this.now();
    if (t - this.windowStart >= this.intervalMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perInterval) {
      this.suppressed++;
      return false;
    }
    this.inWindow++;
    if (this.suppressed > 0) {
      this.log.warn({ ...fields, suppressed: this.suppressed }, msg);
      this.suppressed = 0;
    } else {
      this.log.warn(fields, msg);
    }
    return true;
  }
}
