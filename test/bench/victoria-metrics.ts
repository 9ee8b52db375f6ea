// Debian's victoria-metrics single node as a benchmark peer (bench:query, bench:query-memory).
import { spawn } from "node:child_process";
import { freePort, tempDir, waitHealthy, type Proc } from "../lib/procs.js";

export const VM_BIN = "/usr/bin/victoria-metrics";

/** A database a benchmark loads and queries (Strata or a peer). */
export interface BenchTarget {
  readonly name: string;
  /** API root: `http://…/select/0/prometheus` or `http://…`. */
  readonly api: string;
  readonly writeUrl: string;
  /** Processes that answer queries (select + storage; the VM single node), for CPU per query. */
  readonly pids: readonly number[];
  /** Makes written data searchable and merged. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export async function vmMetric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  return sum;
}

/** Starts Debian's victoria-metrics single node on a loopback port with its data in a temporary directory. */
export async function startVictoriaMetrics(dirName: string): Promise<BenchTarget> {
  const dir = tempDir(dirName);
  const port = await freePort();
  const child = spawn(VM_BIN, [`-storageDataPath=${dir.path}`, `-httpListenAddr=127.0.0.1:${port}`, "-retentionPeriod=100y", "-loggerLevel=ERROR"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const proc: Proc = {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      return child.exitCode;
    },
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
  };
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(`${base}/health`, proc);
  return {
    name: "victoria-metrics",
    api: base,
    writeUrl: `${base}/api/v1/write`,
    pids: [child.pid!],
    async flush() {
      await (await fetch(`${base}/internal/force_flush`)).text();
      await (await fetch(`${base}/internal/force_merge`)).text();
      // force_merge runs in the background: wait until no merge is active twice in a row.
      for (let quiet = 0, i = 0; quiet < 2 && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 500));
        quiet = (await vmMetric(base, "vm_active_merges")) === 0 ? quiet + 1 : 0;
      }
    },
    async stop() {
      await proc.stop();
      dir.remove();
    },
  };
}
