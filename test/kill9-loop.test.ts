import { describe, expect, it } from "vitest";
import { decodeMetricName, DEFAULT_TENANT, newMatcher } from "@strata/core";
import { decodeBlock, Storage } from "@strata/storage";
import { clusterBuilt, startCluster, type Cluster } from "./lib/cluster.js";
import { exportSamples, metricValue, sleep, until, WriteLoad } from "./lib/load.js";
import { serviceMain, startProcess, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Issue 14 part 4: 10 SIGKILLs of random storage nodes and of insert under RF=2 remote-write
 * load (one process down at a time, restarted after a random pause). Afterwards every
 * acknowledged sample is returned once by select, and every storage node holding it holds it
 * exactly once, on at least replicationFactor nodes.
 */
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const KILLS = 10;
const RF = 2;
const METRIC = "kill9_loop";

describe.skipIf(!built)(`kill -9 loop under RF=${RF} load${built ? "" : " — skipped: services not built (pnpm build)"}`, () => {
  it(`${KILLS} random SIGKILLs of storage nodes and insert lose no acknowledged sample and duplicate none within a replica`, { timeout: 300_000 }, async () => {
    const c: Cluster = await startCluster({ storageNodes: 3, replicationFactor: RF });
    const insertArgs = [
      serviceMain("insert"),
      `-httpListenAddr=${c.insertUrl.slice("http://".length)}`,
      `-storageNode=${c.storage.map((s) => s.insertAddr).join(",")}`,
      `-replicationFactor=${RF}`,
    ];
    let insert: Proc = c.insert;
    const extra: Proc[] = [];
    const load = new WriteLoad(() => c.insertUrl, METRIC, 50, Date.now() - 3_600_000);
    const kills: string[] = [];
    try {
      load.start(3);
      const allHealthy = async (): Promise<boolean> => (await metricValue(`${c.insertUrl}/metrics`, "strata_insert_healthy_nodes")) === c.storage.length;
      for (let i = 0; i < KILLS; i++) {
        // One process down at a time: every acknowledged write then has RF copies.
        await until(allHealthy, "insert to see every storage node healthy", 60_000);
        await load.waitAcked(20);
        await sleep(200 + Math.random() * 1000);
        const victim = Math.floor(Math.random() * (c.storage.length + 1));
        if (victim < c.storage.length) {
          const node = c.storage[victim]!;
          kills.push(node.name);
          await node.proc.kill9();
          await sleep(100 + Math.random() * 700);
          await node.start();
        } else {
          kills.push("insert");
          await insert.kill9();
          await sleep(100 + Math.random() * 700);
          insert = startProcess(process.execPath, insertArgs);
          extra.push(insert);
          await waitHealthy(`${c.insertUrl}/health`, insert);
        }
      }
      await until(allHealthy, "insert to see every storage node healthy", 60_000);
      await load.waitAcked(20);
    } finally {
      await load.stop();
    }
    try {
      expect(kills).toHaveLength(KILLS);
      await Promise.all(c.storage.map((s) => fetch(`http://${s.httpAddr}/internal/force_flush`)));
      expect(load.verify(await exportSamples(c.selectUrl, METRIC, load.t0))).toEqual([]);

      // Per replica, offline: the nodes stopped, each data directory opened as is.
      await Promise.all([...extra.map((p) => p.stop()), c.insert.stop(), c.select.stop()]);
      await Promise.all(c.storage.map((s) => s.proc.stop()));
      const copies = new Map<string, number>(); // "s/t" → nodes holding it
      for (const node of c.storage) {
        const st = await Storage.open(node.dataPath, { onEvent: () => {} });
        try {
          await st.forceMerge();
          const cur = st.search(DEFAULT_TENANT, [newMatcher("=", "__name__", METRIC)], 0, Date.now() + 3_600_000);
          while (cur.next()) {
            const series = cur.at();
            const s = decodeMetricName(series.metricName).labels.find((l) => l.name === "s")!.value;
            const seen = new Set<number>();
            for (const b of series.blocks) {
              const ts = new Float64Array(b.count);
              const vals = new Float64Array(b.count);
              decodeBlock(b, ts, vals);
              for (let i = 0; i < b.count; i++) {
                if (seen.has(ts[i]!)) throw new Error(`${node.name}: series s=${s} holds timestamp ${ts[i]} twice`);
                seen.add(ts[i]!);
                if (vals[i] !== ts[i]! - load.t0) throw new Error(`${node.name}: series s=${s} timestamp ${ts[i]} has value ${vals[i]}`);
              }
            }
            for (const t of seen) copies.set(`${s}/${t}`, (copies.get(`${s}/${t}`) ?? 0) + 1);
          }
        } finally {
          await st.close();
        }
      }
      const short: string[] = [];
      for (const k of load.acked) {
        for (let s = 0; s < load.series; s++) {
          const n = copies.get(`${s}/${load.t0 + k}`) ?? 0;
          if (n < RF && short.length < 10) short.push(`request ${k} series s=${s}: ${n} copies`);
        }
      }
      expect(short).toEqual([]);
      console.log(`kill -9 loop: kills ${kills.join(", ")}; ${load.acked.size} requests acknowledged, failures ${JSON.stringify([...load.failures])}`);
    } finally {
      await Promise.all(extra.map((p) => p.stop()));
      await c.stop();
    }
  });
});
