import type { FastifyInstance, FastifyReply } from "fastify";
import { errorMessage, httpStatusOf, type Logger, type MetricsRegistry } from "@strata/core";
import type { HttpSecurity } from "@strata/httpsec";
import { createServiceApp, type EndpointKey, type FlagsPage } from "@strata/httpsvc";
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
  /** -httpAuth.*, -metricsAuthKey and TLS; without it the port is plain HTTP and open. */
  readonly security?: HttpSecurity;
  readonly keys?: StorageAuthKeys;
  /** /flags and -flagsAuthKey. */
  readonly flagsPage?: FlagsPage;
}

/** The keys as VictoriaMetrics' vmstorage names them, on the paths they guard. */
function endpointKeys(k: StorageAuthKeys | undefined): EndpointKey[] {
  if (k === undefined) return [];
  return [
    { flag: "snapshotAuthKey", key: k.snapshot, path: "/snapshot/*" },
    { flag: "forceMergeAuthKey", key: k.forceMerge, path: "/internal/force_merge" },
    { flag: "forceFlushAuthKey", key: k.forceFlush, path: "/internal/force_flush" },
  ];
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
 * /snapshot/{create,list,delete,delete_all}, /internal/force_flush, /internal/force_merge. Any
 * method is accepted, as in vmstorage. Snapshot errors answer vmstorage's
 * `{"status":"error","msg":…}`; the others plain text.
 */
export function buildHttpApp(d: HttpDeps): FastifyInstance {
  const app = createServiceApp({
    log: d.log,
    metrics: d.metrics,
    ...(d.security ? { security: d.security } : {}),
    authKeys: endpointKeys(d.keys),
    ...(d.flagsPage ? { flagsPage: d.flagsPage } : {}),
    notReady: () => (d.isReady() ? undefined : "not ready"),
    extraMetrics: () => renderStorageMetrics(d.storage.metrics()),
    // No endpoint takes a body.
    bodyLimit: 64 * 1024,
  });
  const json = (reply: FastifyReply, status: number, v: unknown): FastifyReply => reply.code(status).type("application/json").send(`${JSON.stringify(v)}\n`);
  /** A snapshot endpoint: `fn` returns the answer, or an error status and message. */
  const snapshot = (path: string, fn: (query: Record<string, string | undefined>) => Promise<object | { status: number; msg: string }>): void => {
    app.all(`/snapshot/${path}`, async (req, reply) => {
      try {
        const r = await fn(req.query as Record<string, string | undefined>);
        return "msg" in r ? json(reply, r.status, { status: "error", msg: r.msg }) : json(reply, 200, r);
      } catch (err) {
        d.log.warn({ err: errorMessage(err), path: req.routeOptions.url }, "HTTP request failed");
        return json(reply, httpStatusOf(err), { status: "error", msg: errorMessage(err) });
      }
    });
  };
  snapshot("create", async () => {
    const name = await d.storage.createSnapshot();
    d.log.info({ snapshot: name }, "created snapshot");
    return { status: "ok", snapshot: name };
  });
  snapshot("list", async () => ({ status: "ok", snapshots: d.storage.listSnapshots() }));
  snapshot("delete", async (q) => {
    const name = q["snapshot"] ?? "";
    if (!d.storage.listSnapshots().includes(name)) return { status: 404, msg: `cannot find snapshot ${JSON.stringify(name)}` };
    d.storage.deleteSnapshot(name);
    return { status: "ok" };
  });
  snapshot("delete_all", async () => {
    for (const name of d.storage.listSnapshots()) d.storage.deleteSnapshot(name);
    return { status: "ok" };
  });
  app.all("/internal/force_flush", async (_req, reply) => {
    await d.storage.forceFlush();
    return reply.type("text/plain; charset=utf-8").send("");
  });
  app.all("/internal/force_merge", async (req, reply) => {
    const t0 = performance.now();
    const prefix = (req.query as Record<string, string | undefined>)["partition_prefix"] ?? "";
    const summary = await d.storage.forceMerge(prefix);
    d.log.info({ ...summary, durationMs: Math.round(performance.now() - t0) }, "forced merge done");
    return reply.type("text/plain; charset=utf-8").send("");
  });
  return app;
}
