import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";

/**
 * Issue 18: a short range over long stored blocks (an instant query's 5 minutes of a merged
 * block of 4000 samples) makes the storage nodes send the samples in that range (Search_v1
 * cut_blocks), not the whole blocks; the answers are those of the whole blocks. A real cluster,
 * with -dedup.minScrapeInterval on select (it reads one interval past maxT: a sample there can
 * replace one before maxT) and -search.maxSeries=4: a series with samples only in that interval
 * is not in the answer, and does not count against the limit.
 */

const STEP = 15_000;
const POINTS = 4000;
const DAY = 86_400_000;
// Inside yesterday (UTC): one day partition, so each series is one merged block of POINTS samples.
const END = Math.floor(Date.now() / DAY) * DAY - 2 * 3_600_000;
const START = END - (POINTS - 1) * STEP;
/** Midnight (UTC) at the start of yesterday: the day before it and yesterday are two index days. */
const MIDNIGHT = Math.floor(Date.now() / DAY) * DAY - DAY;
const MAX_SERIES = 4;

interface TraceNode {
  message: string;
  children: TraceNode[];
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const nodes = (t: TraceNode): TraceNode[] => [t, ...t.children.flatMap(nodes)];

describe.skipIf(!built)("storage nodes cut long blocks to a short search range", () => {
  let c: Cluster;
  const enc = encodeURIComponent;
  const value = (s: number, k: number) => (s === 0 ? k * 3 + (k % 7) : Math.round(Math.sin(k / 40) * 1e4) / 100 + 500);

  beforeAll(async () => {
    // Select dedups at 30 s: two samples (15 s apart) per interval, the later one kept.
    c = await startCluster({ storageNodes: 2, selectFlags: ["-dedup.minScrapeInterval=30s", `-search.maxSeries=${MAX_SERIES}`] });
    const batch: TestSeries[] = [0, 1].map((s) => ({
      labels: { __name__: s === 0 ? "cut_total" : "cut_gauge", job: "j" },
      samples: Array.from({ length: POINTS }, (_, k): [number, number] => [START + k * STEP, value(s, k)]),
    }));
    // MAX_SERIES series up to 15 s before MIDNIGHT, and series whose only sample lies after a
    // query at MIDNIGHT - 10 s but inside its last dedup interval (MIDNIGHT - 30 s, MIDNIGHT]:
    // one the same day, and five on the next index day (more than a node may find for the query).
    for (const name of ["edge_same_day", "edge_next_day"]) {
      for (let k = 0; k < MAX_SERIES; k++) {
        batch.push({ labels: { __name__: name, k: String(k) }, samples: [60_000, 45_000, 30_000, 15_000].map((d): [number, number] => [MIDNIGHT - d, k * 100 + d / 1000]) });
      }
    }
    batch.push({ labels: { __name__: "edge_same_day", k: "late" }, samples: [[MIDNIGHT - 5_000, 1]] });
    for (let k = 0; k < 5; k++) batch.push({ labels: { __name__: "edge_next_day", k: `late${k}` }, samples: [[MIDNIGHT + 5_000, 1]] });
    const w = await remoteWrite(c.insertUrl, batch);
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
    await Promise.all(c.storage.map(async (s) => (await fetch(`http://${s.httpAddr}/internal/force_merge`)).text()));
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
  });

  it("sends a few hundred bytes instead of the blocks, and answers as from the whole blocks", async () => {
    // Between two dedup intervals' ends, so the interval after maxT decides the last sample.
    const t = (END - 20 * STEP - 10_000) / 1000;
    const r = await fetch(`${c.selectUrl}/select/0/prometheus/api/v1/query?query=${enc("{job=\"j\"}[5m]")}&time=${t}&trace=1`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { data: { result: { metric: Record<string, string>; values: [number, string][] }[] }; trace: TraceNode };
    const sent = nodes(body.trace)
      .map((n) => /^on the storage node: (\d+) series, (\d+) blocks, (\d+) bytes sent$/.exec(n.message))
      .filter((m) => m !== null)
      .reduce((a, m) => a + Number(m[3]), 0);
    // Whole blocks: 4000 samples each, several KB; cut: 20 samples of 16 bytes and the names.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(2000);
    // What select keeps with dedup at 30 s: the last sample of each (k·30 s - 30 s, k·30 s] in the range.
    const tMs = t * 1000;
    for (const s of [0, 1]) {
      const want: [number, string][] = [];
      for (let k = 0; k < POINTS; k++) {
        const ts = START + k * STEP;
        if (ts <= tMs - 300_000 || ts > tMs) continue;
        const next = ts + STEP;
        if (Math.ceil(next / 30_000) === Math.ceil(ts / 30_000) && next <= END) continue; // dropped: a later sample in its interval
        want.push([ts / 1000, String(value(s, k))]);
      }
      const got = body.data.result.find((x) => x.metric["__name__"] === (s === 0 ? "cut_total" : "cut_gauge"));
      expect(got?.values).toEqual(want);
    }
  });

  it("neither answers nor counts against -search.maxSeries a series whose samples all lie in the dedup interval after the end", async () => {
    for (const name of ["edge_same_day", "edge_next_day"]) {
      const r = await fetch(`${c.selectUrl}/select/0/prometheus/api/v1/query?query=${name}&time=${(MIDNIGHT - 10_000) / 1000}`);
      const text = await r.text();
      expect(r.status, `${name}: ${text}`).toBe(200);
      const body = JSON.parse(text) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      // Each series' last sample at or before the query time: MIDNIGHT - 15 s (the latest of its interval).
      expect(body.data.result.map((x) => [x.metric["k"], x.value[1]])).toEqual(Array.from({ length: MAX_SERIES }, (_, k) => [String(k), String(k * 100 + 15)]));
    }
  });
});
