import type { FastifyReply, FastifyRequest } from "fastify";
import { WWW_AUTHENTICATE, constantTimeEqual, type GuardVerdict, type HttpSecurity } from "@strata/httpsec";
import { pathOf } from "./path.js";

/** A per-endpoint key (`-snapshotAuthKey`, …) wanted as the `authKey` query arg. */
export interface EndpointKey {
  /** The flag's name, without the dash, for the 401 message. */
  readonly flag: string;
  /** The key (read through readSecret); "" leaves the path to -httpAuth.*. */
  readonly key: string;
  /**
   * An exact path, or a prefix ending in `*` (`/snapshot/*`); a segment that is `*` inside the
   * path matches any one segment (the tenant in select's delete_series path, for example).
   */
  readonly path: string;
}

const OK: GuardVerdict = { ok: true };

/**
 * The path as the router matches it: percent-decoded (the router decodes `%5F` to `_` before
 * it picks a route, so `/snap%73hot/…` must meet the key of `/snapshot/…`). `%2F` stays `/`-free
 * inside its segment, as the router keeps it.
 */
function routedPath(url: string): string {
  const raw = pathOf(url);
  if (!raw.includes("%")) return raw;
  return raw
    .split("/")
    .map((seg) => {
      try {
        return decodeURIComponent(seg).replaceAll("/", "%2F");
      } catch {
        return seg;
      }
    })
    .join("/");
}

function authKeyOf(req: FastifyRequest): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.["authKey"];
  return typeof v === "string" ? v : undefined;
}

function keyFor(path: string, keys: readonly EndpointKey[]): EndpointKey | undefined {
  for (const k of keys) {
    if (k.key === "") continue;
    if (k.path.endsWith("*") ? path.startsWith(k.path.slice(0, -1)) : k.path.includes("/*/") ? segmentsMatch(k.path, path) : path === k.path) return k;
  }
  return undefined;
}

/** `pattern` with `*` segments matching any one non-empty segment of `path`. */
function segmentsMatch(pattern: string, path: string): boolean {
  const p = pattern.split("/");
  const s = path.split("/");
  return p.length === s.length && p.every((x, i) => (x === "*" ? s[i] !== "" : x === s[i]));
}

/**
 * The onRequest check: an endpoint with a key of its own wants that key; every other path goes
 * through httpsec's guard (-metricsAuthKey on /metrics, -httpAuth.* elsewhere, probes open).
 * A refusal is a 401 with WWW-Authenticate, counted and logged by reason.
 */
export function authHook(security: HttpSecurity | undefined, keys: readonly EndpointKey[]): ((req: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined {
  if (security?.guard.enabled !== true && keyFor("", keys.map((k) => ({ ...k, path: "*" }))) === undefined) return undefined;
  return async (req, reply) => {
    const path = routedPath(req.url);
    const authKey = authKeyOf(req);
    let v: GuardVerdict = OK;
    const k = keyFor(path, keys);
    if (k !== undefined) {
      if (authKey === undefined || authKey === "") v = { ok: false, reason: "invalid_auth_key", message: `${path} wants the authKey query arg (-${k.flag})` };
      else if (!constantTimeEqual(authKey, k.key)) v = { ok: false, reason: "invalid_auth_key", message: `wrong authKey for ${path}` };
    } else if (security !== undefined) {
      v = security.guard.check(path, req.headers.authorization, authKey);
    }
    if (v.ok) return;
    security?.failures.record(v.reason, req.socket.remoteAddress, req.url);
    if (!req.raw.complete) void reply.header("connection", "close");
    await reply.code(401).header("www-authenticate", WWW_AUTHENTICATE).type("text/plain; charset=utf-8").send(`${v.message}\n`);
  };
}
