// Real backends for the browser end-to-end test. Each starts real processes on loopback, loads
// the same data, and hands back the URL of the UI. No fake API: the UI talks either to a Strata
// cluster (services/NAME/dist) or, until select is built, to VictoriaMetrics single-node (Debian's
// `victoria-metrics`, the reference whose API select mirrors) behind a small server that serves
// the built UI exactly as select does (serveUi) and forwards the API.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { prompbRemote, snappyEncode } from "@strata/protocol";
import { serveUi } from "@strata/ui";
import { PromqlApiServer, type DemoSeries } from "./e2e-promql-server";
import { freePort } from "../../../test/lib/procs.js";

export type { DemoSeries };

export const repoRoot = resolve(import.meta.dirname, "..", "..", "..");
const serviceMain = (name: string): string => join(repoRoot, "services", name, "dist", "main.js");

export interface Backend {
  readonly kind: string;
  /** http://127.0.0.1:port — the UI is at `${origin}/select/0/vmui/`. */
  readonly origin: string;
  /** Stores the series and makes them searchable. */
  load(series: readonly DemoSeries[]): Promise<void>;
  stop(): Promise<void>;
}

/** Ports from the shared scheme (test/lib/procs.ts): below the ephemeral range, a block per vitest worker. */
export { freePort };

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

interface Proc { child: ChildProcess; out: () => string; stop(): Promise<void> }

function startProc(cmd: string, args: readonly string[]): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-200_000); };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    child,
    out: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function waitHealthy(url: string, p: Proc, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`process exited before ${url} was healthy:\n${p.out()}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms:\n${p.out()}`);
}

async function post(url: string, body: string): Promise<void> {
  const r = await fetch(url, { method: "POST", body, headers: { "content-type": "text/plain" } });
  if (r.status >= 300) throw new Error(`POST ${url}: HTTP ${r.status} ${await r.text()}`);
}

export function clusterBuilt(): boolean {
  return ["storage", "insert", "select"].every((s) => existsSync(serviceMain(s)));
}

export function selectBuilt(): boolean {
  return existsSync(serviceMain("select"));
}

/** insert + storage + select from services/NAME/dist, as deploy/local-cluster.mjs starts them. */
export async function startCluster(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), "strata-ui-e2e-"));
  const [pIns, pSel, pHttp, pInsertHttp, pSelectHttp] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const procs: Proc[] = [];
  const stop = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const storage = startProc(process.execPath, [serviceMain("storage"), `-storageDataPath=${dir}`, `-vminsertAddr=127.0.0.1:${pIns}`, `-vmselectAddr=127.0.0.1:${pSel}`, `-httpListenAddr=127.0.0.1:${pHttp}`]);
    procs.push(storage);
    await waitHealthy(`http://127.0.0.1:${pHttp}/health`, storage);
    const insert = startProc(process.execPath, [serviceMain("insert"), `-httpListenAddr=127.0.0.1:${pInsertHttp}`, `-storageNode=127.0.0.1:${pIns}`]);
    procs.push(insert);
    const select = startProc(process.execPath, [serviceMain("select"), `-httpListenAddr=127.0.0.1:${pSelectHttp}`, `-storageNode=127.0.0.1:${pSel}`]);
    procs.push(select);
    await waitHealthy(`http://127.0.0.1:${pInsertHttp}/health`, insert);
    await waitHealthy(`http://127.0.0.1:${pSelectHttp}/health`, select);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    kind: "Strata cluster (storage + insert + select from services/NAME/dist)",
    origin: `http://127.0.0.1:${pSelectHttp}`,
    async load(series) {
      // Remote write 1.0, as Prometheus sends it, 200 series per request.
      for (let i = 0; i < series.length; i += 200) {
        const r = await fetch(`http://127.0.0.1:${pInsertHttp}/insert/0/prometheus/api/v1/write`, {
          method: "POST",
          body: remoteWriteV1(series.slice(i, i + 200)) as Uint8Array<ArrayBuffer>,
          headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
        });
        if (r.status >= 300) throw new Error(`remote write: HTTP ${r.status} ${await r.text()}`);
      }
      await fetch(`http://127.0.0.1:${pHttp}/internal/force_flush`).catch(() => undefined);
    },
    stop,
  };
}

/** VictoriaMetrics single-node behind a server that serves the UI like select does. */
export async function startVictoriaMetrics(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), "strata-ui-e2e-vm-"));
  const vmPort = await freePort();
  const vm = startProc("victoria-metrics", [
    `-storageDataPath=${dir}`, `-httpListenAddr=127.0.0.1:${vmPort}`, "-search.latencyOffset=0s", "-search.disableCache",
    // Track every query in top_queries: by default VictoriaMetrics leaves out queries faster than
    // 1 ms, so on a quiet machine the queries tab could find none (a flaky CI failure).
    "-search.queryStats.minQueryDuration=0s",
    "-loggerLevel=ERROR",
  ]);
  let server: Server | undefined;
  const stop = async (): Promise<void> => {
    if (server) await new Promise<void>((r) => server?.close(() => r()));
    await vm.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(`http://127.0.0.1:${vmPort}/health`, vm);
    server = createServer((req, res) => {
      const url = req.url ?? "/";
      const m = /^\/select\/[^/?]+\/(vmui|prometheus)(.*)$/.exec(url);
      if (m?.[1] === "vmui") {
        void serveUi(req, res, (m[2] ?? "").split("?")[0] ?? "");
        return;
      }
      if (m?.[1] === "prometheus") {
        const up = request({ host: "127.0.0.1", port: vmPort, path: `/prometheus${m[2] ?? ""}`, method: req.method, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
        req.pipe(up);
        return;
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  } catch (e) {
    await stop();
    throw e;
  }
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    kind: "VictoriaMetrics single-node (Debian victoria-metrics) behind serveUi",
    origin: `http://127.0.0.1:${port}`,
    async load(series) {
      await post(`http://127.0.0.1:${vmPort}/api/v1/import/prometheus`, exposition(series));
      await fetch(`http://127.0.0.1:${vmPort}/internal/force_flush`);
    },
    stop,
  };
}

/** @strata/promql's engine over its in-memory querier behind the same HTTP API and serveUi. */
export async function startPromql(): Promise<Backend> {
  const srv = new PromqlApiServer();
  const origin = await srv.listen();
  return {
    kind: "@strata/promql engine over MemoryQuerier behind serveUi",
    origin,
    async load(series) { srv.load(series); },
    stop: () => srv.close(),
  };
}

/** A snappy-compressed remote write 1.0 body; labels sorted by name as Prometheus sends them. */
function remoteWriteV1(series: readonly DemoSeries[]): Uint8Array {
  const req = create(prompbRemote.WriteRequestSchema, {
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, value]) => ({ name, value })),
      samples: s.timestamps.map((t, i) => ({ timestamp: BigInt(t), value: s.values[i] ?? 0 })),
    })),
  });
  return snappyEncode(toBinary(prompbRemote.WriteRequestSchema, req));
}

/** Prometheus text exposition with ms timestamps, as the import endpoints take it. */
export function exposition(series: readonly DemoSeries[]): string {
  const lines: string[] = [];
  for (const s of series) {
    const { __name__: name = "", ...rest } = s.labels;
    const labels = Object.entries(rest).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",");
    s.timestamps.forEach((t, i) => lines.push(`${name}{${labels}} ${s.values[i] ?? 0} ${t}`));
  }
  return lines.join("\n") + "\n";
}

function series(labels: Record<string, string>, start: number, end: number, stepMs: number, f: (k: number) => number): DemoSeries {
  const timestamps: number[] = [];
  const values: number[] = [];
  for (let t = start, k = 0; t <= end; t += stepMs, k++) {
    timestamps.push(t);
    values.push(f(k));
  }
  return { labels, timestamps, values };
}

/** Deterministic demo data over the last `minutes`: counters per job/instance/code and gauges. */
export function demoData(nowMs: number, minutes = 60, stepSec = 15): DemoSeries[] {
  const out: DemoSeries[] = [];
  const start = nowMs - minutes * 60_000;
  const end = nowMs;
  for (const [job, n] of [["api", 3], ["web", 2], ["worker", 2]] as const) {
    for (let i = 0; i < n; i++) {
      for (const code of ["200", "500"]) {
        let total = 0;
        out.push(series({ __name__: "http_requests_total", job, instance: `${job}-${i}:8080`, code }, start, end, stepSec * 1000, (k) => {
          total += (code === "200" ? 20 : 1) * (1 + i * 0.5) * (1 + 0.8 * Math.sin(k / 20 + i)) * stepSec;
          return Math.round(total * 10) / 10;
        }));
      }
      out.push(series({ __name__: "node_load1", job, instance: `${job}-${i}:9100` }, start, end, stepSec * 1000, (k) => Number((1 + i + Math.sin(k / 15 + i) * 0.8).toFixed(3))));
      out.push(series({ __name__: "up", job, instance: `${job}-${i}:9100` }, start, end, stepSec * 1000, () => 1));
    }
  }
  out.push(series({ __name__: "process_resident_memory_bytes", job: "select", instance: "select:8481" }, start, end, stepSec * 1000, (k) => 200e6 + 20e6 * Math.sin(k / 30)));
  return out;
}

/** `n` gauges over the last 30 minutes at 30 s, for the many-series check. */
export function manySeries(nowMs: number, n: number): DemoSeries[] {
  return Array.from({ length: n }, (_x, i) => series({ __name__: "ui_load_test", series: `s${i}` }, nowMs - 30 * 60_000, nowMs, 30_000, (k) => (i % 50) + Math.sin(k / 8 + i)));
}
