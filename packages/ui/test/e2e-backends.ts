// Real backends for the browser end-to-end test. Each starts real processes on loopback, loads
// the same data, and hands back the URL of the UI. No fake API: the UI talks either to a Strata
// cluster (services/NAME/dist) or, until select is built, to VictoriaMetrics single-node (Debian's
// `victoria-metrics`, the reference whose API select mirrors) behind a small server that serves
// the built UI exactly as select does (serveUi) and forwards the API.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serveUi } from "@strata/ui";

export const repoRoot = resolve(import.meta.dirname, "..", "..", "..");
const serviceMain = (name: string): string => join(repoRoot, "services", name, "dist", "main.js");

export interface Backend {
  readonly kind: string;
  /** http://127.0.0.1:port — the UI is at `${origin}/select/0/vmui/`. */
  readonly origin: string;
  /** Pushes Prometheus text exposition lines (with ms timestamps) and makes them searchable. */
  importText(text: string): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createNetServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      srv.close(() => res(port));
    });
  });
}

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
    kind: "Strata cluster (storage + insert + select from services/*/dist)",
    origin: `http://127.0.0.1:${pSelectHttp}`,
    async importText(text) {
      await post(`http://127.0.0.1:${pInsertHttp}/insert/0/prometheus/api/v1/import/prometheus`, text);
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
    async importText(text) {
      await post(`http://127.0.0.1:${vmPort}/api/v1/import/prometheus`, text);
      await fetch(`http://127.0.0.1:${vmPort}/internal/force_flush`);
    },
    stop,
  };
}

/** Deterministic demo data over the last `minutes`: counters per job/instance/code and gauges. */
export function demoData(nowMs: number, minutes = 60, stepSec = 15): string {
  const lines: string[] = [];
  const jobs = [["api", 3], ["web", 2], ["worker", 2]] as const;
  const start = nowMs - minutes * 60_000;
  for (let t = start, k = 0; t <= nowMs; t += stepSec * 1000, k++) {
    for (const [job, n] of jobs) {
      for (let i = 0; i < n; i++) {
        for (const code of ["200", "500"]) {
          const rate = (code === "200" ? 20 : 1) * (1 + i * 0.5) * (1 + 0.3 * Math.sin(k / 20 + i));
          const v = Math.round(rate * stepSec * k * 10) / 10;
          lines.push(`http_requests_total{job="${job}",instance="${job}-${i}:8080",code="${code}"} ${v} ${t}`);
        }
        lines.push(`node_load1{job="${job}",instance="${job}-${i}:9100"} ${(1 + i + Math.sin(k / 15 + i) * 0.8).toFixed(3)} ${t}`);
      }
    }
    lines.push(`process_resident_memory_bytes{job="select",instance="select:8481"} ${200e6 + 20e6 * Math.sin(k / 30)} ${t}`);
  }
  return lines.join("\n") + "\n";
}
