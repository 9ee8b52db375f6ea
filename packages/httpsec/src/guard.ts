import { constantTimeEqual } from "./compare.js";
import { parseAuthorization } from "./authorization.js";
import type { AuthFailureReason } from "./failures.js";

/** Credentials that protect a service's own endpoints (not the data it serves to tenants). */
export interface GuardOptions {
  /** `-httpAuth.username`: basic auth on the service endpoints; empty disables it. */
  readonly username: string;
  /** `-httpAuth.password`, already read through readSecret. */
  readonly password: string;
  /** `-metricsAuthKey`: `authKey` query arg for /metrics; overrides httpAuth there. */
  readonly metricsAuthKey: string;
}

export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: AuthFailureReason; readonly message: string };

const OK: GuardVerdict = { ok: true };

/** Paths that stay open whatever the flags say: load balancers and systemd probe them. */
const OPEN_PATHS = new Set(["/health", "/-/ready", "/-/healthy"]);

/**
 * The VictoriaMetrics rules for a service's own endpoints: `/metrics` wants `authKey` when
 * `-metricsAuthKey` is set, else basic auth when `-httpAuth.username` is set; every other
 * endpoint the guard is asked about wants basic auth when it is set; health probes stay open.
 * Every comparison runs in constant time.
 */
export class HttpGuard {
  constructor(private readonly opts: GuardOptions) {}

  get enabled(): boolean {
    return this.opts.username !== "" || this.opts.metricsAuthKey !== "";
  }

  check(path: string, authorization: string | readonly string[] | undefined, authKey: string | undefined): GuardVerdict {
    if (OPEN_PATHS.has(path)) return OK;
    if (path === "/metrics" && this.opts.metricsAuthKey !== "") {
      if (authKey === undefined || authKey === "") return { ok: false, reason: "invalid_auth_key", message: "/metrics wants the authKey query arg (-metricsAuthKey)" };
      return constantTimeEqual(authKey, this.opts.metricsAuthKey) ? OK : { ok: false, reason: "invalid_auth_key", message: "wrong authKey for /metrics" };
    }
    return this.checkBasic(authorization);
  }

  /** Basic auth alone (for endpoints that have no key of their own). */
  checkBasic(authorization: string | readonly string[] | undefined): GuardVerdict {
    if (this.opts.username === "") return OK;
    const c = parseAuthorization(authorization);
    switch (c.kind) {
      case "none":
        return { ok: false, reason: "missing_credentials", message: "missing 'Authorization' request header" };
      case "malformed":
        return { ok: false, reason: "malformed_credentials", message: `cannot parse the Authorization header: ${c.why}` };
      case "bearer":
        return { ok: false, reason: "invalid_auth_token", message: "this endpoint wants basic auth (-httpAuth.username)" };
      case "basic": {
        // Both compared, always: no early exit that tells which one was wrong.
        const u = constantTimeEqual(c.username, this.opts.username);
        const p = constantTimeEqual(c.password, this.opts.password);
        return u && p ? OK : { ok: false, reason: "invalid_auth_token", message: "wrong username or password" };
      }
    }
  }
}
