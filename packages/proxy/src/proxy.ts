import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage, readBody, type Logger, type MetricsRegistry } from "@strata/core";
import { AuthFailures, RateLimitedLog, WWW_AUTHENTICATE, parseAuthorization } from "@strata/httpsec";
import type { AuthConfig } from "./config.js";
import { attempt, createAgents, type Agents } from "./forward.js";
import { Limiter } from "./limiter.js";
import { parseRequestTarget, type RequestTarget } from "./path.js";
import { UserTable, type ProxyDefaults, type Route, type User } from "./users.js";

export interface ProxyOptions extends ProxyDefaults {
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** -maxConcurrentRequests: requests proxied at once over all users. */
  readonly maxConcurrentRequests: number;
  /** -maxQueueDuration: how long a request waits for a slot before 429. */
  readonly maxQueueDurationMs: number;
  /** -maxRequestBodySizeToRetry: bodies up to this size are kept to be sent again. */
  readonly maxRequestBodySizeToRetry: number;
  /** -responseTimeout: time for a backend to start answering. */
  readonly responseTimeoutMs: number;
  /** -maxIdleConnsPerBackend. */
  readonly maxIdleConnsPerBackend: number;
  /** -removeXFFHTTPHeaderValue: drop the client's X-Forwarded-For before adding the peer address. */
  readonly removeXff: boolean;
  /** Where the config came from, for messages. */
  readonly file: string;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

function sendText(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
  res.end(`${message}\n`);
}

/**
 * The proxy: finds the user by its credentials, routes the request by the user's url_map and
 * url_prefix, bounds concurrency, and forwards it to a backend picked by the load-balancing
 * policy, trying the next backend when one fails (vmauth's semantics). The config can be
 * swapped at run time (reload); requests in flight finish on the config they started with.
 */
export class AuthProxy {
  private table: UserTable;
  private readonly agents: Agents;
  private readonly global: Limiter;
  private readonly failures: AuthFailures;
  private readonly missingRoute;
  private readonly clientCanceled;
  private readonly limitReached;
  private readonly warnings: RateLimitedLog;

  constructor(
    config: AuthConfig,
    private readonly opts: ProxyOptions,
  ) {
    const m = opts.metrics;
    this.table = new UserTable(config, opts, opts.file);
    this.table.activate(m);
    this.agents = createAgents(opts.maxIdleConnsPerBackend);
    this.global = new Limiter(opts.maxConcurrentRequests);
    this.failures = new AuthFailures({ metrics: m, log: opts.log, counter: "vmauth_http_request_errors_total" });
    this.missingRoute = m.counter(`vmauth_http_request_errors_total{reason="missing_route"}`);
    this.clientCanceled = m.counter(`vmauth_http_request_errors_total{reason="client_canceled"}`);
    this.limitReached = m.counter("vmauth_concurrent_requests_limit_reached_total", "Requests refused with 429 by -maxConcurrentRequests.");
    m.gauge("vmauth_concurrent_requests_capacity", "-maxConcurrentRequests.", () => this.global.capacity);
    m.gauge("vmauth_concurrent_requests_current", "Requests being proxied.", () => this.global.current);
    this.warnings = new RateLimitedLog(opts.log, 10, 1000);
  }

  /** Number of users in the current config. */
  get userCount(): number {
    return this.table.users.length;
  }

  /** Swaps in a new config; throws (keeping the old one) when its users cannot be built. */
  reload(config: AuthConfig): void {
    const next = new UserTable(config, this.opts, this.opts.file);
    next.activate(this.opts.metrics, this.table);
    this.table = next;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const table = this.table;
    const creds = parseAuthorization(req.headers.authorization);
    const path = req.url ?? "/";
    if (creds.kind === "none") {
      if (table.unauthorized) return this.serve(req, res, table.unauthorized, table);
      this.failures.record("missing_credentials", req.socket.remoteAddress, path);
      return sendText(res, 401, "missing 'Authorization' request header", { "www-authenticate": WWW_AUTHENTICATE });
    }
    const user = creds.kind === "malformed" ? undefined : table.find(creds);
    if (user) return this.serve(req, res, user, table);
    if (table.unauthorized) return this.serve(req, res, table.unauthorized, table);
    this.failures.record(creds.kind === "malformed" ? "malformed_credentials" : "invalid_auth_token", req.socket.remoteAddress, path);
    return sendText(res, 401, creds.kind === "malformed" ? `Unauthorized: ${creds.why}` : "Unauthorized", { "www-authenticate": WWW_AUTHENTICATE });
  }

  private async serve(req: IncomingMessage, res: ServerResponse, user: User, table: UserTable): Promise<void> {
    const t0 = process.hrtime.bigint();
    user.metrics.requests.inc();
    try {
      let target: RequestTarget;
      try {
        target = parseRequestTarget(req.url ?? "/");
      } catch (err) {
        user.metrics.requestErrors.inc();
        return sendText(res, 400, `bad request target: ${errorMessage(err)}`);
      }
      const host = (req.headers.host ?? "").replace(/:\d+$/, "");
      const route = user.route({ path: target.path, host, query: new URLSearchParams(target.query), headers: req.headers });
      if (route === undefined) {
        if (user === table.unauthorized && table.users.length > 0) {
          // vmauth: with users configured, a path the unauthorized user has no route for asks for credentials.
          this.failures.record("missing_credentials", req.socket.remoteAddress, req.url ?? "/");
          return sendText(res, 401, "missing 'Authorization' request header", { "www-authenticate": WWW_AUTHENTICATE });
        }
        this.missingRoute.inc();
        user.metrics.requestErrors.inc();
        return sendText(res, 400, `missing route for ${JSON.stringify(target.path === "" ? "/" : target.path)}: no url_map entry of user ${JSON.stringify(user.name)} matches and it has no url_prefix`);
      }
      // Waiting for a slot ends early when the client goes away.
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      res.once("close", onClose);
      const globalSlot = await this.global.acquire(this.opts.maxQueueDurationMs, gone.signal);
      if (gone.signal.aborted) {
        if (globalSlot) this.global.release();
        this.clientCanceled.inc();
        return;
      }
      if (!globalSlot) {
        this.limitReached.inc();
        return sendText(res, 429, `cannot start the request within -maxQueueDuration=${this.opts.maxQueueDurationMs}ms: -maxConcurrentRequests=${this.global.capacity} requests are in flight`, { "retry-after": "10" });
      }
      try {
        const userSlot = await user.limiter.acquire(this.opts.maxQueueDurationMs, gone.signal);
        res.off("close", onClose);
        if (gone.signal.aborted) {
          if (userSlot) user.limiter.release();
          this.clientCanceled.inc();
          return;
        }
        if (!userSlot) {
          user.metrics.limitReached.inc();
          return sendText(res, 429, `cannot start the request within -maxQueueDuration=${this.opts.maxQueueDurationMs}ms: user ${JSON.stringify(user.name)} has ${user.limiter.capacity} requests in flight (max_concurrent_requests)`, { "retry-after": "10" });
        }
        try {
          await this.forward(req, res, user, route, target);
        } finally {
          user.limiter.release();
        }
      } finally {
        this.global.release();
      }
    } finally {
      user.metrics.duration.observeSince(t0);
    }
  }

  private async forward(req: IncomingMessage, res: ServerResponse, user: User, route: Route, target: RequestTarget): Promise<void> {
    const cl = req.headers["content-length"];
    const chunked = req.headers["transfer-encoding"] !== undefined;
    let body: Buffer | undefined;
    if (!chunked && (cl === undefined || cl === "0")) body = Buffer.alloc(0);
    else if (!chunked && Number(cl) <= this.opts.maxRequestBodySizeToRetry) {
      try {
        body = await readBody(req, this.opts.maxRequestBodySizeToRetry);
      } catch (err) {
        user.metrics.requestErrors.inc();
        return sendText(res, 400, `cannot read the request body: ${errorMessage(err)}`);
      }
    }
    let canceled = false;
    res.once("close", () => {
      if (!res.writableFinished) canceled = true;
    });
    const set = route.backends;
    let soft = 0;
    for (let i = 0; i < set.size; ) {
      const b = set.pick();
      if (b === undefined) break;
      user.metrics.backendRequests.inc();
      let r;
      try {
        r = await attempt({
          req,
          res,
          backend: b,
          route,
          target,
          body,
          idempotent: IDEMPOTENT.has(req.method ?? "GET"),
          responseTimeoutMs: this.opts.responseTimeoutMs,
          removeXff: this.opts.removeXff,
          agents: this.agents,
          fail: (status, message) => sendText(res, status, message),
          onBackendError: (message) => this.warnings.warn({ user: user.name, backend: b.url.origin }, message),
        });
      } finally {
        set.release(b);
      }
      if (canceled) {
        this.clientCanceled.inc();
        return;
      }
      if (r === "done") return;
      user.metrics.backendErrors.inc();
      if (r === "fatal") {
        user.metrics.requestErrors.inc();
        return;
      }
      if (r === "retry_soft" && soft++ === 0) continue;
      set.markBroken(b);
      i++;
    }
    user.metrics.requestErrors.inc();
    sendText(res, 502, `all the ${set.size} backends for the user ${JSON.stringify(user.name)} are unavailable`);
  }
}
