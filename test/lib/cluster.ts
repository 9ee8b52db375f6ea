import { request } from "node:http";
import { existsSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { prompbRemote, snappyEncode } from "@strata/protocol";
import { freePort, isBuilt, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./procs.js";

/**
 * A real Strata cluster for end-to-end tests: N storage processes, insert and select, each a
 * `node services/<name>/dist/main.js` process on loopback ports, data in a temp dir.
 */

export interface StorageNode {
  readonly name: string;
  readonly dataPath: string;
  readonly insertAddr: string;
  readonly selectAddr: string;
  readonly httpAddr: string;
  proc: Proc;
  start(): Promise<void>;
}

export interface Cluster {
  readonly storage: StorageNode[];
  readonly insertUrl: string;
  readonly selectUrl: string;
  readonly insert: Proc;
  readonly select: Proc;
  /** `GET`/`POST` a select API path (`/select/0/prometheus/api/v1/query?...`). */
  api(path: string, init?: RequestInit): Promise<{ status: number; json: unknown; text: string }>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly storageNodes?: number;
  readonly replicationFactor?: number;
  readonly selectFlags?: readonly string[];
  readonly insertFlags?: readonly string[];
  readonly storageFlags?: readonly string[];
  /** Environment variables added to the select process's (e.g. allocator settings). */
  readonly selectEnv?: Readonly<Record<string, string>>;
  /** Node.js options before the script (e.g. `--cpu-prof`), per service. */
  readonly nodeArgs?: { readonly storage?: readonly string[]; readonly insert?: readonly string[]; readonly select?: readonly string[] };
}

/**
 * glibc malloc settings every deployment sets for the services (systemd units, Dockerfile,
 * deploy/local-cluster.mjs; why: docs/install.md, "Memory"): a fixed mmap threshold returns
 * freed buffers of 128 KiB and more to the OS at once instead of keeping them in the heap, and
 * two arenas keep the thread pool's allocations from fragmenting eight more. The environment
 * of the test process overrides them.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" };
/** The environment the systemd units give the services (glibc malloc settings; docs/install.md, "Memory"). */
export const serviceEnv = (): NodeJS.ProcessEnv => ({ ...MALLOC_ENV, ...process.env });
/** jemalloc as systemd/strata-select.service preloads it (when installed: `apt-get install libjemalloc2`). */
export const JEMALLOC_PATH = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
/** The environment the select unit gives select: the services' one plus jemalloc when it is installed. */
export const selectServiceEnv = (): NodeJS.ProcessEnv =>
  existsSync(JEMALLOC_PATH)
    ? { LD_PRELOAD: JEMALLOC_PATH, MALLOC_CONF: "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0", ...serviceEnv() }
    : serviceEnv();
/**
 * Node.js options the systemd units put before each service's script (`ExecStart`; why:
 * docs/install.md, "Memory"): storage and insert cap V8's young generation at 8 MiB
 * semi-spaces (default up to 16). Options given after these win (V8 takes the last value).
 */
export const UNIT_NODE_ARGS: Readonly<Record<"storage" | "insert" | "select", readonly string[]>> = {
  storage: ["--max-semi-space-size=8"],
  insert: ["--max-semi-space-size=8"],
  select: [],
};

export function clusterBuilt(): boolean {
  return isBuilt("storage") && isBuilt("insert") && isBuilt("select");
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const n = opts.storageNodes ?? 2;
  const rf = opts.replicationFactor ?? 1;
  const dir = tempDir("cluster");
  const storage: StorageNode[] = [];
  // Every process started so far: a start that fails stops them (a failed select left the
  // storage nodes and insert running, orphaned, with their data directory).
  const started: Proc[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const [pi, ps, ph] = [await freePort(), await freePort(), await freePort()];
      const node: StorageNode = {
        name: `storage-${i + 1}`,
        dataPath: `${dir.path}/storage-${i + 1}`,
        insertAddr: `127.0.0.1:${pi}`,
        selectAddr: `127.0.0.1:${ps}`,
        httpAddr: `127.0.0.1:${ph}`,
        proc: undefined as unknown as Proc,
        async start() {
          this.proc = startProcess(process.execPath, [
            ...UNIT_NODE_ARGS.storage,
      ...(opts.nodeArgs?.storage ?? []),
            serviceMain("storage"),
            `-storageDataPath=${this.dataPath}`,
            `-vminsertAddr=${this.insertAddr}`,
            `-vmselectAddr=${this.selectAddr}`,
            `-httpListenAddr=${this.httpAddr}`,
            ...(opts.storageFlags ?? []),
          ], serviceEnv());
          started.push(this.proc);
          await waitHealthy(`http://${this.httpAddr}/health`, this.proc);
        },
      };
      storage.push(node);
    }
    await Promise.all(storage.map((s) => s.start()));
    const [insertPort, selectPort] = [await freePort(), await freePort()];
    const insert = startProcess(process.execPath, [
      ...UNIT_NODE_ARGS.insert,
      ...(opts.nodeArgs?.insert ?? []),
      serviceMain("insert"),
      `-httpListenAddr=127.0.0.1:${insertPort}`,
      `-storageNode=${storage.map((s) => s.insertAddr).join(",")}`,
      `-replicationFactor=${rf}`,
      ...(opts.insertFlags ?? []),
    ], serviceEnv());
    started.push(insert);
    const select = startProcess(process.execPath, [
      ...UNIT_NODE_ARGS.select,
      ...(opts.nodeArgs?.select ?? []),
      serviceMain("select"),
      `-httpListenAddr=127.0.0.1:${selectPort}`,
      `-storageNode=${storage.map((s) => s.selectAddr).join(",")}`,
      `-replicationFactor=${rf}`,
      ...(opts.selectFlags ?? []),
    ], { ...serviceEnv(), ...opts.selectEnv });
    started.push(select);
    const insertUrl = `http://127.0.0.1:${insertPort}`;
    const selectUrl = `http://127.0.0.1:${selectPort}`;
    await Promise.all([waitHealthy(`${insertUrl}/health`, insert), waitHealthy(`${selectUrl}/health`, select)]);
    return cluster(storage, insert, select, insertUrl, selectUrl, dir);
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    dir.remove();
    throw err;
  }
}

function cluster(storage: StorageNode[], insert: Proc, select: Proc, insertUrl: string, selectUrl: string, dir: { remove(): void }): Cluster {
  return {
    storage,
    insertUrl,
    selectUrl,
    insert,
    select,
    async api(path, init) {
      const r = await fetch(`${selectUrl}${path}`, init);
      const text = await r.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: r.status, json, text };
    },
    async stop() {
      await Promise.all([insert.stop(), select.stop()]);
      await Promise.all(storage.map((s) => s.proc.stop()));
      dir.remove();
    },
  };
}

/**
 * An HTTP request with the path exactly as given (fetch would fold `..` segments and re-encode
 * the path first); fails after `timeoutMs` without an answer.
 */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  body?: Uint8Array | string,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms: ${method} ${path.slice(0, 300)}`)));
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : Buffer.from(body));
  });
}

/** A Prometheus API JSON answer. */
export interface ApiBody {
  status: string;
  data?: unknown;
  errorType?: string;
  error?: string;
  warnings?: string[];
  isPartial?: boolean;
}

export interface TestSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly samples: readonly (readonly [number, number])[];
}

/** Encodes a remote write 1.0 body (snappy-compressed prompb.WriteRequest). */
export function remoteWriteBody(series: readonly TestSeries[]): Uint8Array {
  const req = create(prompbRemote.WriteRequestSchema, {
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, value]) => ({ name, value })),
      samples: s.samples.map(([timestamp, value]) => ({ timestamp: BigInt(timestamp), value })),
    })),
  });
  return snappyEncode(toBinary(prompbRemote.WriteRequestSchema, req));
}

/** POSTs series to insert's remote write endpoint; resolves with the HTTP status. */
export async function remoteWrite(insertUrl: string, series: readonly TestSeries[], tenant = "0"): Promise<{ status: number; text: string }> {
  const r = await fetch(`${insertUrl}/insert/${tenant}/prometheus/api/v1/write`, {
    method: "POST",
    headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
    body: Buffer.from(remoteWriteBody(series)),
  });
  return { status: r.status, text: await r.text() };
}

/** Asks every storage node to make just-written rows searchable. */
export async function forceFlush(c: Cluster): Promise<void> {
  await Promise.all(c.storage.map((s) => fetch(`http://${s.httpAddr}/internal/force_flush`)));
}
