import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusterBuilt, remoteWrite } from "./lib/cluster.js";
import { repoRoot, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * The README's start command (deploy/start.sh runs `node deploy/local-cluster.mjs` after install
 * and build): the launcher itself, with its options for the data directory, the number of storage
 * nodes, the replication factor and every port, so that it runs beside other clusters. It must
 * print the URLs, start a working cluster and stop every process it started on Ctrl-C (SIGINT).
 */

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

async function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/** A base port such that base+offset is free for every offset. */
async function freeBase(offsets: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (const o of offsets) {
      if (!(await canListen(base + o))) {
        ok = false;
        break;
      }
    }
    if (ok) return base;
  }
  throw new Error("no free port range found");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Direct children of a process (Linux /proc). */
function childrenOf(pid: number): number[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split(/\s+/)
    .filter((s) => s !== "")
    .map(Number);
}

describe.skipIf(!built)("deploy/local-cluster.mjs (the README's start command)", () => {
  const dir = tempDir("local-cluster");
  let launcher: Proc | undefined;
  afterAll(async () => {
    await launcher?.stop(40_000);
    dir.remove();
  }, 60_000);

  it("starts 3 storage nodes with RF=2 on the given ports and data dir, prints the URLs, serves data, and stops everything on SIGINT", async () => {
    // Ports: insert, select, storage RPC base (+1, +10, +11, +20, +21), storage HTTP base (+10, +20).
    const ins = await freeBase([0, 1]);
    const rpc = await freeBase([0, 1, 10, 11, 20, 21]);
    const http = await freeBase([0, 10, 20]);
    const dataDir = join(dir.path, "data");
    launcher = startProcess(process.execPath, [
      join(repoRoot, "deploy", "local-cluster.mjs"),
      `-dataDir=${dataDir}`,
      "-storageNodes=3",
      "-replicationFactor=2",
      `-insertPort=${ins}`,
      `-selectPort=${ins + 1}`,
      `-storageBasePort=${rpc}`,
      `-storageHttpBasePort=${http}`,
    ]);
    const insertUrl = `http://127.0.0.1:${ins}`;
    const selectUrl = `http://127.0.0.1:${ins + 1}`;
    await Promise.all([
      waitHealthy(`${insertUrl}/health`, launcher, 30_000),
      waitHealthy(`${selectUrl}/health`, launcher, 30_000),
      ...[0, 10, 20].map((o) => waitHealthy(`http://127.0.0.1:${http + o}/health`, launcher, 30_000)),
    ]);
    const out = launcher.output();
    expect(out).toContain(`remote_write URL : http://localhost:${ins}/insert/0/prometheus/api/v1/write`);
    expect(out).toContain(`Grafana (Prometheus data source): http://localhost:${ins + 1}/select/0/prometheus`);
    expect(out).toContain(`Web UI           : http://localhost:${ins + 1}/select/0/vmui/`);
    expect(out).toContain("3 storage node(s), replicationFactor=2");
    // Every listening socket is bound to loopback (Linux's /proc/net/tcp: local address 0100007F = 127.0.0.1, state 0A = LISTEN).
    expect(out).toContain("insert and select listen on 127.0.0.1");
    if (existsSync("/proc/net/tcp")) {
      const listening = readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === "0A").map((f) => f[1] ?? "");
      for (const port of [ins, ins + 1, rpc, rpc + 1, http]) {
        const hex = port.toString(16).toUpperCase().padStart(4, "0");
        expect(listening.filter((a) => a.endsWith(`:${hex}`)), `port ${port}`).toEqual([`0100007F:${hex}`]);
      }
    }
    for (const n of [1, 2, 3]) expect(existsSync(join(dataDir, `storage-${n}`)), `storage-${n} under -dataDir`).toBe(true);

    // Data in through insert, every series answered through select.
    const now = Date.now();
    const series = Array.from({ length: 30 }, (_, i) => ({ labels: { __name__: "local_cluster_probe", i: String(i) }, samples: [[now - 1000, i]] as [number, number][] }));
    const w = await remoteWrite(insertUrl, series);
    expect(w.status, w.text).toBe(204);
    for (const o of [0, 10, 20]) await fetch(`http://127.0.0.1:${http + o}/internal/force_flush`);
    const q = await fetch(`${selectUrl}/select/0/prometheus/api/v1/query?query=count(local_cluster_probe)&time=${now / 1000}`);
    const body = (await q.json()) as { isPartial?: boolean; data: { result: { value: [number, string] }[] } };
    expect(body.isPartial ?? false).toBe(false);
    expect(body.data.result[0]?.value[1]).toBe("30");

    // Ctrl-C: the launcher stops its 5 processes and exits 0.
    const kids = childrenOf(launcher.child.pid!);
    expect(kids).toHaveLength(5);
    launcher.child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => (launcher!.child.exitCode !== null ? r(launcher!.child.exitCode) : launcher!.child.on("exit", (c) => r(c))));
    expect(code).toBe(0);
    expect(kids.filter(alive)).toEqual([]);
    expect(launcher.output()).toContain("SIGINT: stopping 5 processes");
  }, 120_000);

  it("rejects unknown options and a replication factor above the node count", async () => {
    for (const [args, msg] of [
      [["-bogus=1"], "unknown argument -bogus=1"],
      [["-storageNodes=1", "-replicationFactor=2"], "need 1 <= replicationFactor (2) <= storageNodes (1)"],
    ] as const) {
      const p = startProcess(process.execPath, [join(repoRoot, "deploy", "local-cluster.mjs"), ...args]);
      const code = await new Promise<number | null>((r) => p.child.on("exit", (c) => r(c)));
      expect(code).toBe(2);
      expect(p.output()).toContain(msg);
    }
  });
});
