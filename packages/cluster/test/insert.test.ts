import { create } from "@bufbuild/protobuf";
import { decodeMetricName, encodeMetricName, MetricsRegistry, RowsBatchReader, RowsBatchWriter, UnavailableError } from "@strata/core";
import { InsertCluster, nodeSeed, rankNodes, seriesHash, type WriteOutcome } from "@strata/cluster";
import { addService, cluster, decodeWriteRows, grpc, InsertServiceDefinition } from "@strata/protocol";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";

/** An in-process fake storage node: records the series names it stored. */
class FakeNode {
  readonly server = new grpc.Server();
  readonly series = new Map<string, number>();
  address = "";
  delayMs = 0;
  /** What Ping_v1 tells of the node's -retentionPeriod / -futureRetention (0: an older node that does not say). */
  retentionMs = 0n;
  futureRetentionMs = 0n;
  async start(port = 0): Promise<this> {
    addService(this.server, InsertServiceDefinition, {
      WriteRows_v1: (call, cb) => {
        const r = new RowsBatchReader(decodeWriteRows(call.request));
        let n = 0;
        while (r.next()) {
          const k = Buffer.from(r.metricName).toString("hex");
          this.series.set(k, (this.series.get(k) ?? 0) + 1);
          n++;
        }
        setTimeout(() => cb(null, create(cluster.WriteRowsResponseSchema, { rowsWritten: n })), this.delayMs);
      },
      WriteMetadata_v1: (call, cb) => cb(null, create(cluster.WriteMetadataResponseSchema, { written: call.request.metadata.length })),
      Ping_v1: (_c, cb) =>
        cb(null, create(cluster.PingResponseSchema, { nodeId: this.address, ready: true, retentionMs: this.retentionMs, futureRetentionMs: this.futureRetentionMs })),
    });
    const p = await new Promise<number>((res, rej) =>
      this.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    this.address = `127.0.0.1:${p}`;
    return this;
  }
  stop(): void {
    this.server.forceShutdown();
  }
}

const tenant = { accountID: 0, projectID: 0 };
const nameOf = (i: number): Uint8Array =>
  encodeMetricName({ tenant, labels: [{ name: "__name__", value: "m" }, { name: "i", value: String(i) }] });

function batch(series: number, points = 2): Uint8Array {
  const w = new RowsBatchWriter();
  for (let i = 0; i < series; i++) {
    const n = nameOf(i);
    for (let p = 0; p < points; p++) w.add(n, 1000 * p, i);
  }
  return w.finish();
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function setup(n: number, rf: number, extra: Partial<ConstructorParameters<typeof InsertCluster>[0]> = {}) {
  const nodes = await Promise.all(Array.from({ length: n }, () => new FakeNode().start()));
  const metrics = new MetricsRegistry();
  const c = new InsertCluster({ nodes: nodes.map((x) => x.address), replicationFactor: rf, metrics, ...extra });
  cleanup.push(() => c.close(), ...nodes.map((x) => () => x.stop()));
  return { nodes, c, metrics };
}

type Mode = "batch" | "routed" | "records";

/** The remote write label records (`0a <rec> 0a <ln> name 12 <lv> value` per label) that spell a canonical name's labels. */
function labelRecords(name: Uint8Array): DataView {
  const te = new TextEncoder();
  const bytes = decodeMetricName(name).labels.flatMap((l) => {
    const n = [...te.encode(l.name)];
    const v = [...te.encode(l.value)];
    return [0x0a, 4 + n.length + v.length, 0x0a, n.length, ...n, 0x12, v.length, ...v];
  });
  return new DataView(Uint8Array.from(bytes).buffer);
}

/**
 * Writes a batch through InsertCluster.write, or row by row through a RoutedRows as the remote
 * write decoder does (with each name's series hash): each name given as bytes, or as the label
 * records that spell it (a raw-labels cache hit on a fingerprint).
 */
async function writeVia(c: InsertCluster, b: Uint8Array, mode: Mode): Promise<WriteOutcome> {
  if (mode === "batch") return c.write(b);
  const r = c.routedRows();
  try {
    const rd = new RowsBatchReader(b);
    const h = { lo: 0, hi: 0 };
    while (rd.next()) {
      if (rd.sameAsPrevious) {
        r.addSameName(rd.timestamp, rd.value);
      } else if (mode === "records") {
        seriesHash(rd.metricName, h);
        const rec = labelRecords(rd.metricName);
        const t = decodeMetricName(rd.metricName).tenant;
        r.addRecordsName(rec, 0, rec.byteLength, rd.metricName.length, t.accountID, t.projectID, h.lo, h.hi, rd.timestamp, rd.value);
      } else {
        seriesHash(rd.metricName, h);
        r.addHashedName(rd.metricName, 0, rd.metricName.length, h.lo, h.hi, rd.timestamp, rd.value);
      }
    }
    return await c.writeRouted(r);
  } finally {
    c.releaseRouted(r);
  }
}

describe.each<Mode>(["batch", "routed", "records"])("InsertCluster placement (%s)", (mode) => {
  const write = (c: InsertCluster, b: Uint8Array): Promise<WriteOutcome> => writeVia(c, b, mode);

  it.each([
    [1, 3],
    [2, 3],
    [3, 3],
  ])("RF=%i over %i nodes puts each series on its first RF ranked nodes", async (rf, n) => {
    const { nodes, c } = await setup(n, rf);
    const out = await write(c, batch(300));
    expect(out).toEqual({ rows: 600, underReplicatedRows: 0, reroutedRows: 0 });
    for (let i = 0; i < 300; i++) {
      const name = nameOf(i);
      const want = c.ranking(name).slice(0, rf).sort();
      const got = nodes.flatMap((x, idx) => (x.series.get(hex(name)) === 2 ? [idx] : [])).sort();
      expect(got).toEqual(want);
    }
    // Rendezvous spreads series evenly: every node holds a fair share.
    for (const x of nodes) expect(x.series.size).toBeGreaterThan((300 * rf) / n / 2);
  });

  it("reroutes a dead node's share to the next ranked healthy node (RF=2)", async () => {
    const { nodes, c, metrics } = await setup(3, 2);
    nodes[0]!.stop();
    const out = await write(c, batch(200));
    expect(out.underReplicatedRows).toBe(0);
    expect(out.reroutedRows).toBeGreaterThan(0);
    for (let i = 0; i < 200; i++) {
      const k = hex(nameOf(i));
      expect((nodes[1]!.series.get(k) ?? 0) + (nodes[2]!.series.get(k) ?? 0)).toBe(4);
    }
    expect(metrics.render()).toMatch(/strata_insert_rows_rerouted_total \d+/);
  });

  it("when both replicas of a series fail it lands once on each of two other nodes (RF=2, 4 nodes, 2 down)", async () => {
    const { nodes, c } = await setup(4, 2);
    nodes[0]!.stop();
    nodes[1]!.stop();
    const out = await write(c, batch(200));
    expect(out).toMatchObject({ rows: 400, underReplicatedRows: 0 });
    for (let i = 0; i < 200; i++) {
      const k = hex(nameOf(i));
      // Two points per series, no duplicate from a series whose two nodes both failed.
      expect(nodes[2]!.series.get(k)).toBe(2);
      expect(nodes[3]!.series.get(k)).toBe(2);
    }
  });

  it("acknowledges on every healthy replica when fewer than RF are up, and counts it", async () => {
    const { nodes, c, metrics } = await setup(3, 3);
    nodes[2]!.stop();
    const out = await write(c, batch(50));
    expect(out.underReplicatedRows).toBe(100);
    expect(metrics.render()).toMatch(/strata_insert_rows_under_replicated_total 100/);
  });

  it("fails with UnavailableError when no node can take data", async () => {
    const { nodes, c } = await setup(2, 1);
    for (const x of nodes) x.stop();
    await expect(write(c, batch(10))).rejects.toBeInstanceOf(UnavailableError);
  });

  it("with -disableRerouting a series whose only node is down is not stored elsewhere", async () => {
    const { nodes, c } = await setup(3, 1, { disableRerouting: true });
    nodes[0]!.stop();
    await expect(write(c, batch(100))).rejects.toThrow(/could not be stored on any storage node/);
    for (const x of nodes.slice(1)) {
      for (const k of x.series.keys()) {
        const i = [...Array(100).keys()].find((j) => hex(nameOf(j)) === k)!;
        expect(c.ranking(nameOf(i))[0]).not.toBe(0);
      }
    }
  });

  it("reroutes around a saturated node when its buffer wait times out", async () => {
    const { nodes, c } = await setup(2, 1, { maxBufferBytesPerNode: 1, bufferWaitMs: 50 });
    nodes[0]!.delayMs = 400;
    await write(c, batch(10)); // connect both channels first
    const [a, b] = await Promise.all([write(c, batch(100)), write(c, batch(100))]);
    expect(a.rows + b.rows).toBe(400);
    expect(a.reroutedRows + b.reroutedRows).toBeGreaterThan(0);
  });

  it("a restarted node becomes healthy again through the ping loop", async () => {
    const { nodes, c } = await setup(2, 1, { healthCheckIntervalMs: 100 });
    const port = Number(nodes[0]!.address.split(":")[1]);
    nodes[0]!.stop();
    await write(c, batch(20));
    expect(c.nodes[0]!.healthy).toBe(false);
    const again = await new FakeNode().start(port);
    cleanup.push(() => again.stop());
    for (let i = 0; i < 50 && !c.nodes[0]!.healthy; i++) await new Promise((r) => setTimeout(r, 100));
    expect(c.nodes[0]!.healthy).toBe(true);
  });
});

describe("InsertCluster retention window", () => {
  it("takes the widest -retentionPeriod and -futureRetention the nodes tell in Ping_v1; 0 while none has told", async () => {
    const nodes = await Promise.all([new FakeNode(), new FakeNode(), new FakeNode()].map((n) => n.start()));
    cleanup.push(...nodes.map((x) => () => x.stop()));
    nodes[0]!.retentionMs = 31n * 86_400_000n;
    nodes[0]!.futureRetentionMs = 2n * 86_400_000n;
    nodes[1]!.retentionMs = 365n * 86_400_000n;
    nodes[1]!.futureRetentionMs = 86_400_000n;
    // nodes[2] is an older node: it says nothing of its window.
    const c = new InsertCluster({ nodes: nodes.map((x) => x.address), replicationFactor: 1, healthCheckIntervalMs: 60_000 });
    cleanup.push(() => c.close());
    expect(c.retention()).toEqual({ retentionMs: 0, futureRetentionMs: 0 });
    // The first ping goes out at once, not after -healthCheckInterval.
    for (let i = 0; i < 50 && c.retention().retentionMs === 0; i++) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 50 && c.retention().retentionMs < 365 * 86_400_000; i++) await new Promise((r) => setTimeout(r, 20));
    expect(c.retention()).toEqual({ retentionMs: 365 * 86_400_000, futureRetentionMs: 2 * 86_400_000 });
  });
});

describe("rendezvous ranking", () => {
  it("removing a node moves only the series that ranked it first", () => {
    const addrs = ["a:8400", "b:8400", "c:8400", "d:8400"];
    const seeds = addrs.map(nodeSeed);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 40 }), fc.nat({ max: 3 }), (name, removed) => {
        const h = seriesHash(name, { lo: 0, hi: 0 });
        const all = new Int32Array(4);
        rankNodes(h.lo, h.hi, seeds, all, 0, new Float64Array(4));
        const rest = seeds.filter((_, i) => i !== removed);
        const some = new Int32Array(3);
        rankNodes(h.lo, h.hi, rest, some, 0, new Float64Array(3));
        const back = [...some].map((i) => (i >= removed ? i + 1 : i));
        expect(back).toEqual([...all].filter((i) => i !== removed));
      }),
      { numRuns: 300 },
    );
  });
});
