import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, waitHealthy, type Proc } from "./procs.js";

/**
 * Debian's Prometheus and Alertmanager as real peers of a test, on loopback ports, with their
 * data under the test's temp dir. The caller registers `proc` for stopping before awaiting
 * `ready()`, so a peer that never comes up is still stopped.
 */

export interface Peer {
  readonly proc: Proc;
  readonly url: string;
  /** Resolves once the peer answers /-/ready (30 s at most). */
  ready(): Promise<void>;
}

function peer(proc: Proc, url: string): Peer {
  return { proc, url, ready: () => waitHealthy(`${url}/-/ready`, proc, 30_000) };
}

/** Alertmanager with one blackhole receiver (alerts are read back through its API). */
export async function startAlertmanager(dir: string, opts: { readonly groupInterval?: string } = {}): Promise<Peer> {
  const [port, clusterPort] = [await freePort(), await freePort()];
  const config = join(dir, "alertmanager.yml");
  const interval = opts.groupInterval !== undefined ? `  group_interval: ${opts.groupInterval}\n` : "";
  writeFileSync(config, `route:\n  receiver: blackhole\n  group_wait: 1s\n${interval}receivers:\n  - name: blackhole\n`);
  const proc = startProcess("prometheus-alertmanager", [
    `--config.file=${config}`,
    `--storage.path=${join(dir, "am-data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--cluster.listen-address=",
    `--cluster.advertise-address=127.0.0.1:${clusterPort}`,
  ]);
  return peer(proc, `http://127.0.0.1:${port}`);
}

/** Prometheus with `config` (a prometheus.yml body) and extra flags; `port` when the config needs it. */
export async function startPrometheus(dir: string, config: string, args: readonly string[] = [], port?: number): Promise<Peer> {
  const p = port ?? (await freePort());
  const file = join(dir, "prometheus.yml");
  writeFileSync(file, config);
  const proc = startProcess("prometheus", [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, "prom-data")}`, `--web.listen-address=127.0.0.1:${p}`, ...args]);
  return peer(proc, `http://127.0.0.1:${p}`);
}
