import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Backend } from "./balancer.js";
import { dropPrefixParts, encodePath, encodeQuery, type RequestTarget } from "./path.js";
import type { HeaderSpec } from "./config.js";
import type { Route } from "./users.js";

/**
 * Sending one request to one backend: the hop-by-hop rules of RFC 9110 §7.6.1, X-Forwarded-For,
 * the config's headers, keep-alive agents, bodies streamed both ways. The request body is
 * written only once the connection is up, so a backend that refuses the connection has consumed
 * nothing and the request can go to another backend whatever its size.
 */

// `expect` too: Node's server has already answered a client's `100-continue` itself.
const HOP_BY_HOP = ["connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect"];

/** Removes hop-by-hop headers and those the Connection header names. */
export function stripHopByHop(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = new Set(HOP_BY_HOP);
  const conn = h["connection"];
  for (const v of typeof conn === "string" ? [conn] : (conn ?? [])) {
    for (const name of v.split(",")) {
      const n = name.trim().toLowerCase();
      if (n !== "") drop.add(n);
    }
  }
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || drop.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function applyHeaders(h: Record<string, string | string[]>, specs: readonly HeaderSpec[]): void {
  for (const s of specs) {
    const k = s.name.toLowerCase();
    if (s.value === "") delete h[k];
    else h[k] = s.value;
  }
}

/** The backend URL's path and query for a request: vmauth's mergeURLs. */
export function targetPath(prefix: URL, target: RequestTarget, route: Route): string {
  const src = dropPrefixParts(target.path, route.dropSrcPathPrefixParts);
  let base = prefix.pathname;
  if (src.startsWith("/")) base = base.replace(/\/+$/, "");
  // prefix.pathname is already encoded by WHATWG URL; the request part is encoded here.
  const path = (base + encodePath(src)) || "/";
  if (prefix.search === "") return target.query === "" ? path : `${path}?${encodeQuery(target.query)}`;
  // Arguments set in url_prefix win over the client's of the same name (e.g. extra_label).
  const own = prefix.searchParams;
  const merged = new URLSearchParams();
  for (const [k, v] of new URLSearchParams(target.query)) if (!own.has(k)) merged.append(k, v);
  for (const [k, v] of own) merged.append(k, v);
  merged.sort();
  return `${path}?${merged.toString()}`;
}

export type AttemptResult =
  /** The client got the backend's answer (or the client went away). */
  | "done"
  /** The backend failed before answering; try another one and skip this one for -failTimeout. */
  | "retry"
  /** A reused keep-alive connection was closed under us: try again without blaming the backend. */
  | "retry_soft"
  /** Answered with an error already; stop. */
  | "fatal";

export interface AttemptInput {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly backend: Backend;
  readonly route: Route;
  readonly target: RequestTarget;
  /** The whole body when it is small enough to send again; else undefined (stream req). */
  readonly body: Buffer | undefined;
  readonly idempotent: boolean;
  readonly responseTimeoutMs: number;
  readonly removeXff: boolean;
  readonly agents: Agents;
  /** Writes an error answer (status, message) when no header was sent yet. */
  readonly fail: (status: number, message: string) => void;
  readonly onBackendError: (message: string) => void;
}

export interface Agents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

export function createAgents(maxIdlePerBackend: number): Agents {
  const opts = { keepAlive: true, maxFreeSockets: maxIdlePerBackend, scheduling: "lifo" as const };
  return { http: new HttpAgent(opts), https: new HttpsAgent(opts) };
}

export function attempt(a: AttemptInput): Promise<AttemptResult> {
  const url = a.backend.url;
  const isHttps = url.protocol === "https:";
  const headers: OutgoingHttpHeaders & Record<string, string | string[]> = stripHopByHop(a.req.headers);
  const client = a.req.socket.remoteAddress;
  if (client !== undefined) {
    const prior = a.req.headers["x-forwarded-for"];
    headers["x-forwarded-for"] = prior !== undefined && !a.removeXff ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${client}` : client;
  }
  if (!a.route.keepOriginalHost) headers["host"] = url.host;
  applyHeaders(headers, a.route.headers);
  if (a.body !== undefined) {
    headers["content-length"] = String(a.body.length);
    if (a.body.length === 0 && a.req.headers["content-length"] === undefined) delete headers["content-length"];
  }
  const path = targetPath(url, a.target, a.route);
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    let bodyStarted = false;
    let gotResponse = false;
    const settle = (r: AttemptResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      a.res.off("close", onClientClose);
      resolve(r);
    };
    const up = (isHttps ? httpsRequest : httpRequest)({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port === "" ? (isHttps ? 443 : 80) : Number(url.port),
      method: a.req.method,
      path,
      headers,
      agent: isHttps ? a.agents.https : a.agents.http,
      setHost: false,
    });
    const timer = setTimeout(() => {
      up.destroy(new Error(`no response within -responseTimeout (${a.responseTimeoutMs} ms)`));
    }, a.responseTimeoutMs);
    const onClientClose = (): void => {
      if (!a.res.writableFinished) up.destroy();
      settle("done");
    };
    a.res.once("close", onClientClose);
    const startBody = (): void => {
      if (bodyStarted) return;
      bodyStarted = true;
      if (a.body !== undefined) {
        up.end(a.body);
        return;
      }
      a.req.pipe(up);
    };
    up.on("socket", (s) => {
      if (s.connecting) s.once(isHttps ? "secureConnect" : "connect", startBody);
      else startBody();
    });
    up.on("error", (err) => {
      if (settled) return;
      const msg = `request to ${url.origin} failed: ${err.message}`;
      a.onBackendError(msg);
      if (gotResponse) {
        // The answer was already streaming: the client sees a cut connection, as it should.
        a.res.destroy(err);
        settle("done");
        return;
      }
      const replayable = a.body !== undefined;
      if (up.reusedSocket && replayable && (err as NodeJS.ErrnoException).code === "ECONNRESET") return settle("retry_soft");
      if (!bodyStarted || (replayable && a.idempotent)) return settle("retry");
      a.fail(503, `cannot proxy the request to ${url.origin}: ${err.message}`);
      settle("fatal");
    });
    up.on("response", (ur: IncomingMessage) => {
      clearTimeout(timer);
      const status = ur.statusCode ?? 502;
      if (a.route.retryStatusCodes.includes(status)) {
        ur.resume();
        if (a.body !== undefined) {
          a.onBackendError(`${url.origin} answered ${status}, which is in retry_status_codes`);
          return settle("retry");
        }
        a.onBackendError(`${url.origin} answered ${status}, which is in retry_status_codes, but the streamed request body cannot be sent again`);
        a.fail(503, `got status ${status} from ${url.origin} and cannot retry the request at another backend: its body was streamed`);
        return settle("fatal");
      }
      gotResponse = true;
      const rh = stripHopByHop(ur.headers);
      applyHeaders(rh, a.route.responseHeaders);
      a.res.writeHead(status, ur.statusMessage, rh);
      // pipe() rather than pipeline(): pipeline makes and aborts an AbortController per call,
      // which showed as ~3% of a GET-heavy profile (DOMException construction).
      ur.pipe(a.res);
      a.res.once("finish", () => settle("done"));
      ur.once("error", (err) => {
        a.res.destroy(err);
        settle("done");
      });
    });
  });
}
