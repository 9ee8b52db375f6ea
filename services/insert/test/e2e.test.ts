// End-to-end: built strata-storage ×3 + strata-insert as real processes on loopback.
// Requires `pnpm build` first (test/run.sh and CI do it).
import { nodeSeed, rankNodes, seriesHash } from "@strata/cluster";
import { encodeMetricName, normalizeLabels, labelsFromRecord, type Tenant } from "@strata/core";
import { snappyEncode } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  forceFlush,
  post,
  remoteWriteV1,
  removeDir,
  searchNode,
  startInsert,
  startStorage,
  type InsertNode,
  type Series,
  type StorageNode,
} from "./cluster-harness.js";
import { encodeRawV2, encodeRemoteWriteV2, Writer } from "./rw2-encoder.js";

const T0 = Date.UTC(2026, 10, 20);
let nodes: StorageNode[] = [];
let ins1: InsertNode; // RF=1
let ins2: InsertNode; // RF=2
const dirs: string[] = [];

beforeAll(async () => {
  assertBuilt();
  nodes = await Promise.all([startStorage(), startStorage(), startStorage()]);
  dirs.push(...nodes.map((n) => n.dir));
  const addrs = nodes.map((n) => n.insertAddr);
  [ins1, ins2] = await Promise.all([
    startInsert(addrs, ["-replicationFactor=1", "-maxInsertRequestSize=64KiB", "-maxLabelsPerTimeseries=8", "-maxLabelValueLen=64"]),
    startInsert(addrs, ["-replicationFactor=2"]),
  ]);
});

afterAll(async () => {
  await Promise.all([ins1?.proc.stop(), ins2?.proc.stop(), ...nodes.map((n) => n.proc.stop())]);
  for (const d of dirs) removeDir(d);
});

function expectedNodes(tenant: Tenant, labels: Record<string, string>, rf: number): number[] {
  const name = encodeMetricName({ tenant, labels: labelsFromRecord(labels) });
  const h = seriesHash(name, { lo: 0, hi: 0 });
  const rank = new Int32Array(nodes.length);
  rankNodes(h.lo, h.hi, nodes.map((n) => nodeSeed(n.insertAddr)), rank, 0, new Float64Array(nodes.length));
  return [...rank.subarray(0, rf)].sort();
}

function makeSeries(metric: string, n: number, points: number): Series[] {
  return Array.from({ length: n }, (_, i) => ({
    labels: { __name__: metric, instance: `host-${i}:9100`, job: "node" },
    samples: Array.from({ length: points }, (_, p) => [T0 + p * 15_000, i * 1000 + p] as [number, number]),
  }));
}

describe("placement", () => {
  it.each([
    ["RF=1", 1, "1"],
    ["RF=2", 2, "2"],
  ])("%s: every series lands on its rendezvous nodes and nowhere else", async (_n, rf, tenantText) => {
    const tenant = { accountID: Number(tenantText), projectID: 0 };
    const ins = rf === 1 ? ins1 : ins2;
    const series = makeSeries("placement_metric", 40, 5);
    const r = await post(`${ins.url}/insert/${tenantText}/prometheus/api/v1/write`, remoteWriteV1(series));
    expect(r.status).toBe(204);
    await forceFlush(nodes);
    const stored = await Promise.all(nodes.map((n) => searchNode(n, tenant, "placement_metric")));
    for (const s of series) {
      const key = normalizeLabels(Object.entries(s.labels).map(([name, value]) => ({ name, value })));
      const where = stored.flatMap((list, i) =>
        list.some((x) => x.labels.length === key.length && x.labels.every((l, j) => l.name === key[j]!.name && l.value === key[j]!.value)) ? [i] : [],
      );
      expect(where).toEqual(expectedNodes(tenant, s.labels, rf));
      for (const i of where) {
        const x = stored[i]!.find((y) => y.labels.some((l) => l.name === "instance" && l.value === s.labels["instance"]))!;
        expect(x.timestamps).toEqual(s.samples.map((p) => p[0]));
        expect(x.values).toEqual(s.samples.map((p) => p[1]));
      }
    }
    // Every node got a share.
    for (const list of stored) expect(list.length).toBeGreaterThan(0);
  });
});

describe("raw-labels cache", () => {
  it("a series sent again is a cache hit (found as the successor, without hashing) and lands on the same nodes", async () => {
    const tenant = { accountID: 21, projectID: 0 };
    const metric = async (name: string): Promise<number> => {
      const m = new RegExp(`^${name} (\\d+)$`, "m").exec(await (await fetch(`${ins2.url}/metrics`)).text());
      return Number(m?.[1] ?? NaN);
    };
    const first = makeSeries("cache_metric", 30, 2);
    const later = first.map((x) => ({ labels: x.labels, samples: x.samples.map(([t, v]) => [t + 60_000, v + 1] as [number, number]) }));
    expect((await post(`${ins2.url}/insert/21/prometheus/api/v1/write`, remoteWriteV1(first))).status).toBe(204);
    const hits = await metric("strata_insert_labels_cache_hits_total");
    const predicted = await metric("strata_insert_labels_cache_predicted_hits_total");
    expect((await post(`${ins2.url}/insert/21/prometheus/api/v1/write`, remoteWriteV1(later))).status).toBe(204);
    expect(await metric("strata_insert_labels_cache_hits_total")).toBe(hits + 30);
    expect(await metric("strata_insert_labels_cache_predicted_hits_total")).toBeGreaterThanOrEqual(predicted + 29);
    await forceFlush(nodes);
    const stored = await Promise.all(nodes.map((n) => searchNode(n, tenant, "cache_metric")));
    for (const s of first) {
      const where = stored.flatMap((list, i) => {
        const x = list.find((y) => y.labels.some((l) => l.name === "instance" && l.value === s.labels["instance"]));
        return x === undefined ? [] : [[i, x.timestamps.length] as const];
      });
      // Both requests' samples of a series are on its two rendezvous nodes, and only there.
      expect(where).toEqual(expectedNodes(tenant, s.labels, 2).map((i) => [i, 4] as const));
    }
  });
});

/** v1 body from raw label byte pairs (to send what the generated encoder refuses to: bad UTF-8). */
function rawV1(labels: [Uint8Array, Uint8Array][]): Uint8Array {
  const ts = new Writer();
  for (const [n, v] of labels) {
    const l = new Writer();
    l.bytes(1, n);
    l.bytes(2, v);
    ts.bytes(1, l.finish());
  }
  const s = new Writer();
  s.double(1, 1);
  s.tag(2, 0);
  s.varint(T0);
  ts.bytes(2, s.finish());
  const req = new Writer();
  req.bytes(1, ts.finish());
  return req.finish();
}

const te = new TextEncoder();
const good = { labels: { __name__: "invalid_case_good", job: "x" }, samples: [[T0, 1]] as [number, number][] };
const V2_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

describe("invalid requests", () => {
  // [name, tenant, body, headers, status, message]
  const cases: [string, string, () => Uint8Array, Record<string, string>, number, RegExp][] = [
    ["bad snappy", "101", () => new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]), {}, 400, /snappy/],
    ["bad protobuf", "102", () => snappyEncode(new Uint8Array([0x0a, 0x7f, 1, 2])), {}, 400, /cannot parse remote write 1.0 protobuf/],
    ["too many labels", "103", () => remoteWriteV1([good, { labels: { __name__: "a", b: "1", c: "2", d: "3", e: "4", f: "5", g: "6", h: "7", i: "8" }, samples: [[T0, 1]] }]), {}, 400, /9 labels, more than the limit of -maxLabelsPerTimeseries=8/],
    ["label value too long", "104", () => remoteWriteV1([good, { labels: { __name__: "a", path: "x".repeat(65) }, samples: [[T0, 1]] }]), {}, 400, /value of label "path" is 65 bytes, longer than -maxLabelValueLen=64/],
    ["no metric name", "105", () => remoteWriteV1([good, { labels: { job: "x" }, samples: [[T0, 1]] }]), {}, 400, /no metric name/],
    ["empty label name", "106", () => remoteWriteV1([good, { labels: { __name__: "a", "": "v" }, samples: [[T0, 1]] }]), {}, 400, /empty name/],
    ["duplicate labels", "107", () => snappyEncode(rawV1([[te.encode("__name__"), te.encode("a")], [te.encode("job"), te.encode("1")], [te.encode("job"), te.encode("2")]])), {}, 400, /duplicate label name "job"/],
    ["invalid UTF-8", "108", () => snappyEncode(rawV1([[te.encode("__name__"), new Uint8Array([0x61, 0xc3, 0x28])]])), {}, 400, /not valid UTF-8/],
    ["2.0 ref out of range", "109", () => snappyEncode(encodeRawV2(["", "__name__", "a"], [1, 7])), { "content-type": V2_TYPE }, 400, /labels_refs 7 is out of range of 3 symbols/],
    ["2.0 odd refs", "110", () => snappyEncode(encodeRawV2(["", "__name__", "a"], [1, 2, 1])), { "content-type": V2_TYPE }, 400, /odd number/],
    ["bad tenant", "abc", () => remoteWriteV1([good]), {}, 400, /invalid tenant/],
    ["bad tenant encoding", "%E0%A4%A", () => remoteWriteV1([good]), {}, 400, /invalid tenant/],
    ["unknown content type", "111", () => remoteWriteV1([good]), { "content-type": "application/json" }, 415, /unsupported Content-Type/],
    ["unknown proto", "112", () => remoteWriteV1([good]), { "content-type": "application/x-protobuf;proto=foo.Bar" }, 415, /unsupported remote write message/],
    ["unknown encoding", "113", () => remoteWriteV1([good]), { "content-encoding": "zstd" }, 415, /Content-Encoding/],
    ["body over -maxInsertRequestSize", "114", () => remoteWriteV1(makeSeries("big", 2000, 20)), {}, 413, /exceeds/],
  ];

  it.each(cases)("%s (tenant %s) is rejected with its status and a message naming the problem", async (_name, tenantText, body, headers, status, msg) => {
    const r = await post(`${ins1.url}/insert/${tenantText}/prometheus`, body(), headers);
    expect(r.status).toBe(status);
    expect(await r.text()).toMatch(msg);
  });

  it("stored nothing from any rejected request", async () => {
    await forceFlush(nodes);
    for (let t = 101; t <= 114; t++) {
      for (const n of nodes) expect(await searchNode(n, { accountID: t, projectID: 0 })).toEqual([]);
    }
  });

  it("counts rejections by reason in /metrics", async () => {
    const text = await (await fetch(`${ins1.url}/metrics`)).text();
    expect(text).toMatch(/strata_insert_requests_rejected_total\{reason="duplicate_label"\} 1/);
    expect(text).toMatch(/strata_insert_requests_rejected_total\{reason="too_many_labels"\} 1/);
  });
});

describe("remote write 2.0", () => {
  it("stores samples from a spec-built body and answers with the Written headers", async () => {
    const body = encodeRemoteWriteV2([
      { labels: { __name__: "rw2_requests_total", code: "200" }, samples: [[T0, 5], [T0 + 15_000, 7]], metadata: { type: 1, help: "Requests.", unit: "" } },
      { labels: { __name__: "rw2_temp_celsius", room: "a" }, samples: [[T0, 21.5]], metadata: { type: 2, help: "Temperature.", unit: "celsius" } },
    ]);
    const r = await post(`${ins2.url}/insert/7:3/prometheus/api/v1/write`, snappyEncode(body), { "content-type": V2_TYPE, "x-prometheus-remote-write-version": "2.0.0" });
    expect(r.status).toBe(204);
    expect(r.headers.get("x-prometheus-remote-write-samples-written")).toBe("3");
    expect(r.headers.get("x-prometheus-remote-write-histograms-written")).toBe("0");
    expect(r.headers.get("x-prometheus-remote-write-exemplars-written")).toBe("0");
    await forceFlush(nodes);
    const tenant = { accountID: 7, projectID: 3 };
    const all = (await Promise.all(nodes.map((n) => searchNode(n, tenant, "rw2_.*")))).flat();
    // RF=2: two copies of each series.
    expect(all.map((s) => s.key).sort()).toEqual([
      'rw2_requests_total{code="200"}',
      'rw2_requests_total{code="200"}',
      'rw2_temp_celsius{room="a"}',
      'rw2_temp_celsius{room="a"}',
    ]);
    expect(all.find((s) => s.key.startsWith("rw2_requests_total"))!.values).toEqual([5, 7]);
  });
});
