import type { Logger, MetricsRegistry } from "@strata/core";
import { labelValue } from "@strata/core";
import { RateLimitedLog } from "./ratelimited-log.js";

/** Why a request was refused with 401. A closed set: each is a label value of the counter. */
export type AuthFailureReason = "missing_credentials" | "malformed_credentials" | "invalid_auth_token" | "invalid_auth_key";

export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ["missing_credentials", "malformed_credentials", "invalid_auth_token", "invalid_auth_key"];

export interface AuthFailureOptions {
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /** Counter family, labelled by `reason` (e.g. `strata_http_auth_failures_total`). */
  readonly counter: string;
  readonly logsPerSecond?: number;
}

/**
 * Counts refused authentications by reason and logs them rate-limited. What is logged is the
 * reason, the client address and the path: never the credentials that were presented.
 */
export class AuthFailures {
  private readonly byReason = new Map<AuthFailureReason, { inc(): void }>();
  private readonly rl: RateLimitedLog;

  constructor(opts: AuthFailureOptions) {
    for (const r of AUTH_FAILURE_REASONS) {
      this.byReason.set(r, opts.metrics.counter(`${opts.counter}{reason="${labelValue(r)}"}`, "Requests refused with 401, by reason."));
    }
    this.rl = new RateLimitedLog(opts.log, opts.logsPerSecond ?? 10, 1000);
  }

  /** `url` may carry a query string: it is cut off, since query args can hold keys and tokens. */
  record(reason: AuthFailureReason, remoteAddr: string | undefined, url: string): void {
    this.byReason.get(reason)!.inc();
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    this.rl.warn({ reason, remoteAddr, path: path.length > 200 ? `${path.slice(0, 200)}…` : path }, "authentication failed");
  }
}
