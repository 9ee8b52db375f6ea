// Starts built Strata services (services/*/dist/main.js) as real processes on loopback for
// end-to-end tests and benchmarks. Requires `pnpm build` first (test/run.sh and CI do it).
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { RowsBatchReader, decodeMetricName, formatLabels, type Label, type Tenant } from "@strata/core";
import { cluster, createSearchClient, prompbRemote, snappyEncode } from "@strata/protocol";
import { serviceEnv, UNIT_NODE_ARGS } from "../../../test/lib/cluster.js";
import { freePort } from "../../../test/lib/procs.js";

const root = resolve(import.meta.dirname, "../../..");
export const STORAGE_MAIN = join(root, "services/storage/dist/main.js");
export const INSERT_MAIN = join(root, "services/insert/dist/main.js");

/** Extra node flags for spawned services after the units' own (UNIT_NODE_ARGS), e.g. STRATA_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env["STRATA_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
/** When set, each spawned service's stdout and stderr also go to <dir>/<name>-<pid>.log (e.g. for --trace-gc). */
const LOG_DIR = process.env["STRATA_PROC_LOG_DIR"];

export function assertBuilt(): void {
  for (const f of [STORAGE_MAIN, INSERT_MAIN]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`pnpm build\` before \`pnpm test\` (test/run.sh does)`);
  }
}

/** Ports from the shared scheme (test/lib/procs.ts): below the ephemeral range, a block per vitest worker. */
export { freePort };

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class Proc {
  readonly output: string[] = [];
  exited: Promise<number | null>;
  constructor(readonly child: ChildProcess, readonly name: string) {
    const log = LOG_DIR === undefined ? undefined : join(LOG_DIR, `${name}-${child.pid ?? 0}.log`);
    const keep = (d: Buffer): void => {
      this.output.push(d.toString());
      if (log !== undefined) appendFileSync(log, d);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((r) => child.once("exit", (code) => r(code)));
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async stop(): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
  log(): string {
    return this.output.join("");
  }
}

async function waitHttp(url: string, proc: Proc, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!proc.alive) throw new Error(`${proc.name} exited: ${proc.log()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready at ${url}: ${proc.log()}`);
}

export interface StorageNode {
  proc: Proc;
  dir: string;
  insertPort: number;
  searchPort: number;
  httpPort: number;
  readonly insertAddr: string;
  readonly searchAddr: string;
  readonly http: string;
}

export async function startStorage(
  dir = tempDir("strata-storage-"),
  ports?: { insertPort: number; searchPort: number; httpPort: number },
  extra: string[] = [],
): Promise<StorageNode> {
  const p = ports ?? { insertPort: await freePort(), searchPort: await freePort(), httpPort: await freePort() };
  const child = spawn(
    process.execPath,
    [
      ...UNIT_NODE_ARGS.storage,
      ...NODE_ARGS,
      STORAGE_MAIN,
      `-storageDataPath=${dir}`,
      `-vminsertAddr=127.0.0.1:${p.insertPort}`,
      `-vmselectAddr=127.0.0.1:${p.searchPort}`,
      `-httpListenAddr=127.0.0.1:${p.httpPort}`,
      "-retentionPeriod=100y",
      "-loggerLevel=WARN",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: serviceEnv() },
  );
  const proc = new Proc(child, `storage ${p.insertPort}`);
  await waitHttp(`http://127.0.0.1:${p.httpPort}/-/ready`, proc);
  return {
    proc,
    dir,
    ...p,
    insertAddr: `127.0.0.1:${p.insertPort}`,
    searchAddr: `127.0.0.1:${p.searchPort}`,
    http: `http://127.0.0.1:${p.httpPort}`,
  };
}

export interface InsertNode {
  proc: Proc;
  port: number;
  readonly url: string;
}

export async function startInsert(nodes: readonly string[], extra: string[] = []): Promise<InsertNode> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...UNIT_NODE_ARGS.insert, ...NODE_ARGS, INSERT_MAIN, `-httpListenAddr=127.0.0.1:${port}`, `-storageNode=${nodes.join(",")}`, "-retentionPeriod=100y", "-loggerLevel=WARN", ...extra],
    { stdio: ["ignore", "pipe", "pipe"], env: serviceEnv() },
  );
  const proc = new Proc(child, `insert ${port}`);
  await waitHttp(`http://127.0.0.1:${port}/health`, proc);
  return { proc, port, url: `http://127.0.0.1:${port}` };
}

export type Series = { labels: Record<string, string>; samples: [number, number][] };

/** A snappy-compressed remote write 1.0 body (encoded with the generated protobuf-es code). */
export function remoteWriteV1(series: readonly Series[]): Uint8Array {
  const req = create(prompbRemote.WriteRequestSchema, {
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
      samples: s.samples.map(([t, v]) => ({ timestamp: BigInt(t), value: v })),
    })),
  });
  return snappyEncode(toBinary(prompbRemote.WriteRequestSchema, req));
}

export function post(url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    body: body as Uint8Array<ArrayBuffer>,
    headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", ...headers },
  });
}

export async function forceFlush(nodes: readonly StorageNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => fetch(`${n.http}/internal/force_flush`).then((r) => r.text())));
}

export interface StoredSeries {
  key: string; // formatLabels
  labels: Label[];
  timestamps: number[];
  values: number[];
}

/** Every series of a tenant on one node whose __name__ matches `nameRegex`, via Search_v1 (rows encoding). */
export async function searchNode(node: StorageNode, tenant: Tenant, nameRegex = ".+", minT = 0, maxT = Number.MAX_SAFE_INTEGER): Promise<StoredSeries[]> {
  const c = createSearchClient(node.searchAddr);
  try {
    const req = create(cluster.SearchRequestSchema, {
      query: {
        tenant: { accountId: tenant.accountID, projectId: tenant.projectID },
        minTimestampMs: BigInt(minT),
        maxTimestampMs: BigInt(maxT),
        matcherGroups: [{ matchers: [{ type: cluster.LabelMatcher_Type.RE, name: "__name__", value: nameRegex }] }],
      },
      acceptedEncodings: [cluster.BlockEncoding.ROWS],
    });
    const out: StoredSeries[] = [];
    for await (const frame of c.stream("Search_v1", req, { deadline: Date.now() + 60_000 })) {
      for (const b of (frame as cluster.SearchResponse).blocks) {
        const mn = decodeMetricName(b.metricName);
        const s: StoredSeries = { key: formatLabels(mn.labels), labels: [...mn.labels], timestamps: [], values: [] };
        const r = new RowsBatchReader(b.data);
        while (r.next()) {
          s.timestamps.push(r.timestamp);
          s.values.push(r.value);
        }
        out.push(s);
      }
    }
    return out;
  } finally {
    c.close();
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
