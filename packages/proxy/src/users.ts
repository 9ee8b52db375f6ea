import { createHash } from "node:crypto";
import { BadDataError, labelValue, type Counter, type Histogram, type MetricsRegistry } from "@strata/core";
import type { Credentials } from "@strata/httpsec";
import { digestEqual } from "@strata/httpsec";
import { BackendSet } from "./balancer.js";
import type { AuthConfig, HeaderSpec, LoadBalancingPolicy, RouteOptions, UrlMapEntry, UserSpec } from "./config.js";
import { Limiter } from "./limiter.js";

/** Defaults from flags, used where the config leaves an option out. */
export interface ProxyDefaults {
  readonly loadBalancingPolicy: LoadBalancingPolicy;
  readonly retryStatusCodes: readonly number[];
  readonly failTimeoutMs: number;
  readonly maxConcurrentPerUserRequests: number;
}

/** Where a request goes and what to do on the way. */
export interface Route {
  readonly backends: BackendSet;
  readonly headers: readonly HeaderSpec[];
  readonly responseHeaders: readonly HeaderSpec[];
  readonly keepOriginalHost: boolean;
  readonly retryStatusCodes: readonly number[];
  readonly dropSrcPathPrefixParts: number;
}

function route(urls: readonly URL[], own: RouteOptions, parent: RouteOptions | undefined, d: ProxyDefaults): Route {
  const pick = <K extends keyof RouteOptions>(k: K): RouteOptions[K] | undefined => own[k] ?? parent?.[k];
  return {
    backends: new BackendSet(urls, pick("loadBalancingPolicy") ?? d.loadBalancingPolicy, d.failTimeoutMs),
    // vmauth: a url_map entry's headers replace the user's (it takes the entry's HeadersConf).
    headers: own.headers,
    responseHeaders: own.responseHeaders,
    keepOriginalHost: own.keepOriginalHost ?? false,
    retryStatusCodes: pick("retryStatusCodes") ?? d.retryStatusCodes,
    dropSrcPathPrefixParts: pick("dropSrcPathPrefixParts") ?? 0,
  };
}

export interface RequestFacts {
  readonly path: string;
  readonly host: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Per-user metrics under vmauth's names (`vmauth_user_*` or `vmauth_unauthorized_user_*`). */
export interface UserMetrics {
  readonly requests: Counter;
  readonly requestErrors: Counter;
  readonly backendRequests: Counter;
  readonly backendErrors: Counter;
  readonly limitReached: Counter;
  readonly duration: Histogram;
}

/** A user of the loaded config: its routes, its concurrency limit, its metrics. */
export class User {
  readonly limiter: Limiter;
  /** Set by activate(): a config that fails to load registers nothing. */
  metrics!: UserMetrics;
  private readonly mapRoutes: { entry: UrlMapEntry; route: Route }[];
  private readonly prefixRoute: Route | undefined;
  private readonly fam: string;
  private readonly labels: string;

  constructor(
    readonly spec: UserSpec,
    d: ProxyDefaults,
    unauthorized: boolean,
  ) {
    this.limiter = new Limiter(spec.maxConcurrentRequests ?? d.maxConcurrentPerUserRequests);
    this.prefixRoute = spec.urlPrefix ? route(spec.urlPrefix, spec, undefined, d) : undefined;
    this.mapRoutes = spec.urlMap.map((entry) => ({ entry, route: route(entry.urlPrefix, entry, spec, d) }));
    this.fam = unauthorized ? "vmauth_unauthorized_user" : "vmauth_user";
    this.labels = unauthorized ? "" : `{username="${labelValue(spec.name)}"}`;
  }

  /** Every metric name of this user (to drop them when a reload removes the user). */
  get metricNames(): string[] {
    const { fam, labels: l } = this;
    return ["requests_total", "request_errors_total", "request_backend_requests_total", "request_backend_errors_total", "concurrent_requests_limit_reached_total", "request_duration_seconds", "concurrent_requests_capacity", "concurrent_requests_current"].map(
      (n) => `${fam}_${n}${l}`,
    );
  }

  /**
   * Registers the user's metrics under vmauth's names. Counters of a user that was already in
   * the previous config keep counting; the gauges are replaced to read this config's limiter.
   */
  activate(registry: MetricsRegistry): void {
    const { fam, labels: l } = this;
    this.metrics = {
      requests: registry.counter(`${fam}_requests_total${l}`, "Requests proxied for the user."),
      requestErrors: registry.counter(`${fam}_request_errors_total${l}`, "Requests of the user that failed (no route, all backends down, body errors)."),
      backendRequests: registry.counter(`${fam}_request_backend_requests_total${l}`, "Requests sent to backends for the user, retries included."),
      backendErrors: registry.counter(`${fam}_request_backend_errors_total${l}`, "Backend attempts that failed for the user."),
      limitReached: registry.counter(`${fam}_concurrent_requests_limit_reached_total${l}`, "Requests refused with 429 by the user's max_concurrent_requests."),
      duration: registry.histogram(`${fam}_request_duration_seconds${l}`, "Time to proxy the user's requests."),
    };
    const cap = `${fam}_concurrent_requests_capacity${l}`;
    const cur = `${fam}_concurrent_requests_current${l}`;
    registry.unregister(cap);
    registry.unregister(cur);
    registry.gauge(cap, "The user's max_concurrent_requests.", () => this.limiter.capacity);
    registry.gauge(cur, "The user's requests in flight.", () => this.limiter.current);
  }

  get name(): string {
    return this.spec.name;
  }

  /** The first url_map entry that matches, else url_prefix, else undefined (no route). */
  route(r: RequestFacts): Route | undefined {
    for (const { entry, route: rt } of this.mapRoutes) {
      if (entry.srcHosts.length > 0 && !entry.srcHosts.some((re) => re.matches(r.host))) continue;
      if (entry.srcPaths.length > 0 && !entry.srcPaths.some((re) => re.matches(r.path))) continue;
      if (entry.srcQueryArgs.length > 0 && !entry.srcQueryArgs.some((qa) => r.query.getAll(qa.name).some((v) => qa.value.matches(v)))) continue;
      if (entry.srcHeaders.length > 0 && !entry.srcHeaders.some((h) => headerValues(r.headers, h.name).includes(h.value))) continue;
      return rt;
    }
    return this.prefixRoute;
  }

}

function headerValues(h: RequestFacts["headers"], name: string): string[] {
  const v = h[name.toLowerCase()];
  if (v === undefined) return [];
  return typeof v === "string" ? v.split(",").map((s) => s.trim()) : v;
}

const digestOf = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();
// JSON keeps the parts apart whatever characters they hold (a NUL separator would not).
const basicKey = (u: string, p: string): string => JSON.stringify(["basic", u, p]);
const bearerKey = (t: string): string => JSON.stringify(["bearer", t]);

/**
 * The users of one loaded config, found by their credentials. Credentials are kept and looked
 * up only as SHA-256 digests: the lookup's timing depends on the digest, which an attacker
 * cannot steer towards a secret byte by byte, and the final check compares digests in constant
 * time. A bearer token also works as a basic-auth username with an empty password (vmauth).
 */
export class UserTable {
  private readonly byDigest = new Map<string, { digest: Buffer; user: User }>();
  readonly users: readonly User[];
  readonly unauthorized: User | undefined;

  constructor(config: AuthConfig, d: ProxyDefaults, file: string) {
    const users: User[] = [];
    const add = (key: string, user: User): void => {
      const digest = digestOf(key);
      const hex = digest.toString("hex");
      const prev = this.byDigest.get(hex);
      if (prev) {
        throw new BadDataError(`${file}:${user.spec.line}: user ${JSON.stringify(user.name)} has the same credentials as user ${JSON.stringify(prev.user.name)} (line ${prev.user.spec.line})`, "STRATA_PARSE_ERROR");
      }
      this.byDigest.set(hex, { digest, user });
    };
    for (const spec of config.users) {
      const u = new User(spec, d, false);
      users.push(u);
      if (spec.bearerToken !== undefined) {
        add(bearerKey(spec.bearerToken), u);
        add(basicKey(spec.bearerToken, ""), u);
      } else {
        add(basicKey(spec.username!, spec.password ?? ""), u);
      }
    }
    this.users = users;
    this.unauthorized = config.unauthorizedUser ? new User(config.unauthorizedUser, d, true) : undefined;
  }

  /** The user these credentials belong to, or undefined. */
  find(c: Credentials): User | undefined {
    let key: string;
    if (c.kind === "basic") key = basicKey(c.username, c.password);
    else if (c.kind === "bearer") key = bearerKey(c.token);
    else return undefined;
    const digest = digestOf(key);
    const hit = this.byDigest.get(digest.toString("hex"));
    return hit && digestEqual(hit.digest, digest) ? hit.user : undefined;
  }

  private all(): User[] {
    return this.unauthorized ? [...this.users, this.unauthorized] : [...this.users];
  }

  /**
   * Registers this table's metrics and drops those of the users of `previous` (the config it
   * replaces) that are gone. Called once the table is built, so a config that fails to build
   * leaves the registry as it was.
   */
  activate(registry: MetricsRegistry, previous?: UserTable): void {
    const now = new Set<string>();
    for (const u of this.all()) {
      u.activate(registry);
      for (const n of u.metricNames) now.add(n);
    }
    for (const u of previous?.all() ?? []) for (const n of u.metricNames) if (!now.has(n)) registry.unregister(n);
  }
}
