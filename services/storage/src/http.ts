import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage, httpStatusOf, type HttpHandler, type Logger, type MetricsRegistry } from "@strata/core";
import { constantTimeEqual, WWW_AUTHENTICATE, type GuardVerdict, type HttpSecurity } from "@strata/httpsec";
import type { Storage } from "@strata/storage";

/** Per-endpoint keys (`authKey` query arg), already read through readSecret; "" leaves -httpAuth.* in charge. */
export interface StorageAuthKeys {
  readonly snapshot: string;
  readonly forceMerge: string;
  readonly forceFlush: string;
}

export interface HttpDeps {
  readonly storage: Storage;
  readonly metrics: MetricsRegistry;
  readonly isReady: () => boolean;
  readonly log: Logger;
  /** Extra exposition text appended to /metrics (the engine's own metrics). */
  readonly extraMetrics?: () => string;
  /** -httpAuth.*, -metricsAuthKey and the per-endpoint keys; without it every endpoint is open. */
  readonly security?: HttpSecurity;
  readonly keys?: StorageAuthKeys;
}

const OK: GuardVerdict = { ok: true };

/** The key that guards a path (VictoriaMetrics vmstorage: -snapshotAuthKey, -forceMergeAuthKey, -forceFlushAuthKey). */
function keyFor(path: string, keys: StorageAuthKeys | undefined): { flag: string; key: string } | undefined {
  if (keys === undefined) return undefined;
  if (path.startsWith("/snapshot/")) return { flag: "snapshotAuthKey", key: keys.snapshot };
  if (path === "/internal/force_merge") return { flag: "forceMergeAuthKey", key: keys.forceMerge };
  if (path === "/internal/force_flush") return { flag: "forceFlushAuthKey", key: keys.forceFlush };
  return undefined;
}

/** An endpoint's key when it has one set, else the guard (basic auth, -metricsAuthKey). */
function verdict(d: HttpDeps, path: string, req: IncomingMessage, url: URL): GuardVerdict {
  const authKey = url.searchParams.get("authKey") ?? undefined;
  const k = keyFor(path, d.keys);
  if (k !== undefined && k.key !== "") {
    if (authKey === undefined || authKey === "") return { ok: false, reason: "invalid_auth_key", message: `${path} wants the authKey query arg (-${k.flag})` };
    return constantTimeEqual(authKey, k.key) ? OK : { ok: false, reason: "invalid_auth_key", message: `wrong authKey for ${path}` };
  }
  return d.security ? d.security.guard.check(path, req.headers.authorization, authKey) : OK;
}

function send(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, v: unknown): void {
  send(res, status, `${JSON.stringify(v)}\n`, "application/json");
}

/** Renders Storage.metrics() (flat names) as gauges prefixed with strata_storage_. */
export function renderStorageMetrics(m: Record<string, number>): string {
  const lines: string[] = [];
  for (const name of Object.keys(m).sort()) {
    const full = `strata_storage_${name.replace(/[^a-zA-Z0-9_:]/g, "_")}`;
    lines.push(`# TYPE ${full} gauge`, `${full} ${m[name]}`);
  }
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

/**
 * The storage node's HTTP API (VictoriaMetrics vmstorage shapes): /metrics, /health, /-/ready,
 * /snapshot/{create,list,delete,delete_all}, /internal/force_flush, /internal/force_merge.
 */
export function httpHandler(d: HttpDeps): HttpHandler {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const v = verdict(d, url.pathname, req, url);
    if (!v.ok) {
      d.security?.failures.record(v.reason, req.socket.remoteAddress, req.url ?? "/");
      res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": WWW_AUTHENTICATE });
      res.end(`${v.message}\n`);
      return;
    }
    try {
      switch (url.pathname) {
        case "/metrics":
          send(res, 200, d.metrics.render() + renderStorageMetrics(d.storage.metrics()) + (d.extraMetrics?.() ?? ""), "text/plain; version=0.0.4; charset=utf-8");
          return;
        case "/health":
          send(res, 200, "OK");
          return;
        case "/-/ready":
          if (d.isReady()) send(res, 200, "OK");
          else send(res, 503, "not ready\n");
          return;
        case "/snapshot/create": {
          const name = await d.storage.createSnapshot();
          d.log.info({ snapshot: name }, "created snapshot");
          json(res, 200, { status: "ok", snapshot: name });
          return;
        }
        case "/snapshot/list":
          json(res, 200, { status: "ok", snapshots: d.storage.listSnapshots() });
          return;
        case "/snapshot/delete": {
          const name = url.searchParams.get("snapshot") ?? "";
          if (!d.storage.listSnapshots().includes(name)) {
            json(res, 404, { status: "error", msg: `cannot find snapshot ${JSON.stringify(name)}` });
            return;
          }
          d.storage.deleteSnapshot(name);
          json(res, 200, { status: "ok" });
          return;
        }
        case "/snapshot/delete_all":
          for (const name of d.storage.listSnapshots()) d.storage.deleteSnapshot(name);
          json(res, 200, { status: "ok" });
          return;
        case "/internal/force_flush":
          await d.storage.forceFlush();
          send(res, 200, "");
          return;
        case "/internal/force_merge": {
          const t0 = performance.now();
          const summary = await d.storage.forceMerge(url.searchParams.get("partition_prefix") ?? "");
          d.log.info({ ...summary, durationMs: Math.round(performance.now() - t0) }, "forced merge done");
          send(res, 200, "");
          return;
        }
        default:
          send(res, 404, `unsupported path ${JSON.stringify(url.pathname)}\n`);
      }
    } catch (err) {
      d.log.warn({ err: errorMessage(err), path: url.pathname }, "HTTP request failed");
      if (url.pathname.startsWith("/snapshot/")) json(res, httpStatusOf(err), { status: "error", msg: errorMessage(err) });
      else send(res, httpStatusOf(err), `${errorMessage(err)}\n`);
    }
  };
}
