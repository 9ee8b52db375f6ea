import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Labels } from "@strata/core";
import { snappyEncode } from "@strata/protocol";
import { parseScript, runScript, type EvalCommand, type EvalOutcome, type QueryResult, type ScriptTarget } from "@strata/promql";
import { clusterBuilt, forceFlush, startCluster, type Cluster } from "./lib/cluster.js";
import { repoRoot } from "./lib/procs.js";

/**
 * Prometheus' PromQL conformance scripts run THROUGH a real cluster: every `load` goes to
 * insert as a remote write 1.0 request, is sharded over two storage processes, and every eval is
 * an HTTP query to select, whose JSON answer is turned back into the runner's result shape. The
 * skip list is the in-process one (packages/promql/test/conformance-skip.txt): any case that
 * passes in-process but fails here is a bug in insert, storage, the search RPC or select.
 *
 * Each file, and each `clear`, gets a fresh tenant instead of deleting data. The rollup result
 * cache stays on, so the run also checks that it never answers from stale or foreign entries.
 */

const dir = resolve(repoRoot, "../shared/conformance/promql");
const skipFile = join(repoRoot, "packages/promql/test/conformance-skip.txt");

function loadSkipList(): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(skipFile)) return m;
  for (const raw of readFileSync(skipFile, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.indexOf(" ");
    m.set(sp < 0 ? line : line.slice(0, sp), sp < 0 ? "" : line.slice(sp + 1).trim());
  }
  return m;
}

// ---- remote write 1.0 encoding (hand-written: it must keep the stale marker's NaN bits) ------

class ProtoWriter {
  buf = new Uint8Array(1 << 16);
  len = 0;
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  varint(v: number): void {
    this.grow(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }
  bytes(field: number, b: Uint8Array): void {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** 8 raw bytes (a double copied from a Float64Array, NaN payload included). */
  fixed64(field: number, raw: Uint8Array): void {
    this.varint((field << 3) | 1);
    this.grow(8);
    this.buf.set(raw, this.len);
    this.len += 8;
  }
  take(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

interface PendingSeries {
  readonly labels: Labels;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

const enc = new TextEncoder();

/** prompb.WriteRequest{timeseries: [{labels, samples: [{value, timestamp}]}]}, snappy-compressed. */
export function encodeWriteRequest(series: readonly PendingSeries[]): Uint8Array {
  const req = new ProtoWriter();
  for (const s of series) {
    const ts = new ProtoWriter();
    for (const l of s.labels) {
      const lw = new ProtoWriter();
      lw.bytes(1, enc.encode(l.name));
      lw.bytes(2, enc.encode(l.value));
      ts.bytes(1, lw.take());
    }
    const raw = new Uint8Array(s.values.buffer, s.values.byteOffset, s.values.byteLength);
    for (let i = 0; i < s.timestamps.length; i++) {
      const sw = new ProtoWriter();
      sw.fixed64(1, raw.subarray(i * 8, i * 8 + 8));
      const t = s.timestamps[i]!;
      if (t < 0) throw new Error(`negative timestamp ${t} in a load`);
      if (t !== 0) {
        sw.varint(2 << 3);
        sw.varint(t);
      }
      ts.bytes(2, sw.take());
    }
    req.bytes(1, ts.take());
  }
  return snappyEncode(req.take());
}

// ---- Prometheus JSON → QueryResult ------------------------------------------------------------

interface ApiBody {
  status: string;
  data?: { resultType: string; result: unknown };
  error?: string;
  warnings?: string[];
  infos?: string[];
}

type JsonSample = [number, string];

/** Prometheus' value strings ("NaN", "+Inf", shortest round-trip decimals) back to floats. */
function parseValue(s: string): number {
  if (s === "NaN") return NaN;
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  const v = Number(s);
  if (Number.isNaN(v)) throw new Error(`select returned a value that is not a number: ${JSON.stringify(s)}`);
  return v;
}

/** API timestamps are unix seconds with up to 3 decimals; back to exact ms. */
function parseTs(t: number): number {
  return Math.round(t * 1000);
}

function labelsOf(metric: Record<string, string>): Labels {
  return Object.entries(metric).map(([name, value]) => ({ name, value }));
}

export function toQueryResult(body: ApiBody, instantTime: number | undefined): QueryResult {
  const warnings = body.warnings ?? [];
  const infos = body.infos ?? [];
  const d = body.data;
  if (d === undefined) throw new Error("select answered success without data");
  switch (d.resultType) {
    case "scalar": {
      const [t, v] = d.result as JsonSample;
      return { type: "scalar", timestamp: parseTs(t), value: parseValue(v), warnings, infos };
    }
    case "string": {
      const [t, v] = d.result as [number, string];
      return { type: "string", timestamp: parseTs(t), value: v, warnings, infos };
    }
    case "vector": {
      const rows = d.result as { metric: Record<string, string>; value?: JsonSample; histogram?: unknown }[];
      const labels: Labels[] = [];
      const values = new Float64Array(rows.length);
      rows.forEach((r, i) => {
        if (r.value === undefined) throw new Error(`select returned a histogram sample for ${JSON.stringify(r.metric)}`);
        labels.push(labelsOf(r.metric));
        values[i] = parseValue(r.value[1]);
        if (instantTime !== undefined && parseTs(r.value[0]) !== instantTime) {
          throw new Error(`vector sample at ${r.value[0]} s, evaluated at ${instantTime} ms`);
        }
      });
      return { type: "vector", timestamp: instantTime ?? 0, labels, values, warnings, infos };
    }
    case "matrix": {
      const rows = d.result as { metric: Record<string, string>; values?: JsonSample[]; histograms?: unknown }[];
      const series = rows.map((r) => {
        if (r.histograms !== undefined) throw new Error(`select returned histogram points for ${JSON.stringify(r.metric)}`);
        const vs = r.values ?? [];
        const timestamps = new Float64Array(vs.length);
        const values = new Float64Array(vs.length);
        vs.forEach(([t, v], i) => {
          timestamps[i] = parseTs(t);
          values[i] = parseValue(v);
        });
        return { labels: labelsOf(r.metric), timestamps, values };
      });
      return { type: "matrix", series, warnings, infos };
    }
    default:
      throw new Error(`unknown resultType ${JSON.stringify(d.resultType)}`);
  }
}

// ---- the cluster target -------------------------------------------------------------------------

let nextTenant = 1;

/** Counts what the target did, for the summary line. */
const work = { cacheResets: 0, writes: 0, series: 0, samples: 0, queries: 0, queryMs: 0, loadMs: 0 };

function clusterTarget(c: Cluster): ScriptTarget {
  let tenant = 0;
  let pending: PendingSeries[] = [];
  /** The current tenant has been queried (its range queries may be cached). */
  let queried = false;

  const flushLoads = async (): Promise<void> => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const t0 = performance.now();
    const r = await fetch(`${c.insertUrl}/insert/${tenant}/prometheus/api/v1/write`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
      body: Buffer.from(encodeWriteRequest(batch)),
    });
    const text = await r.text();
    if (r.status !== 204) throw new Error(`insert answered ${r.status} to a load: ${text}`);
    await forceFlush(c);
    if (queried) {
      // Every load here is a backfill (1970 is far older than -search.cacheTimestampOffset):
      // like VictoriaMetrics, select assumes such points never change unless told so.
      const rr = await fetch(`${c.selectUrl}/internal/resetRollupResultCache`);
      if (rr.status !== 200) throw new Error(`resetRollupResultCache answered ${rr.status}`);
      work.cacheResets++;
    }
    work.writes++;
    work.series += batch.length;
    for (const s of batch) work.samples += s.timestamps.length;
    work.loadMs += performance.now() - t0;
  };

  const query = async (path: string, params: Record<string, string>, instantTime: number | undefined): Promise<QueryResult> => {
    await flushLoads();
    queried = true;
    const t0 = performance.now();
    const r = await fetch(`${c.selectUrl}/select/${tenant}/prometheus/api/v1/${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params).toString(),
    });
    const text = await r.text();
    work.queries++;
    work.queryMs += performance.now() - t0;
    let body: ApiBody;
    try {
      body = JSON.parse(text) as ApiBody;
    } catch {
      throw new Error(`select answered ${r.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    // An error answer is the engine's error: the runner compares its message like in-process.
    if (body.status !== "success") throw new Error(body.error ?? `HTTP ${r.status}`);
    return toQueryResult(body, instantTime);
  };

  const sec = (ms: number) => String(ms / 1000);

  return {
    clear() {
      tenant = nextTenant++;
      pending = [];
      queried = false;
    },
    load(labels, timestamps, values) {
      pending.push({ labels, timestamps: timestamps.slice(), values: values.slice() });
    },
    instantQuery: (q, t) => query("query", { query: q, time: sec(t) }, t),
    rangeQuery: (q, s, e, st) => query("query_range", { query: q, start: sec(s), end: sec(e), step: sec(st) }, undefined),
  };
}

// ---- the suite ---------------------------------------------------------------------------------

const skip = loadSkipList();
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".test")).sort() : [];
const counts = { passed: 0, failed: 0, skipped: 0, nowPassing: 0 };
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built || files.length === 0)("PromQL conformance through insert → 2 storage nodes → select", () => {
  let c: Cluster | undefined;
  const t0 = Date.now();

  beforeAll(async () => {
    c = await startCluster({
      storageNodes: 2,
      replicationFactor: 1,
      // The scripts' samples start at 1970-01-01: keep everything.
      storageFlags: ["-retentionPeriod=100y"],
      insertFlags: ["-retentionPeriod=100y"],
      // The scripts evaluate far in the past, so every point is older than the cache offset
      // and all of it is cached: wrong cache answers would show up as failures.
      // Every range function under a folding aggregation runs on the worker threads (the
      // default keeps small selections on the event loop).
      selectFlags: ["-search.maxQueryDuration=60s", "-search.maxWorkersPerQuery=2", "-search.workerMinSamples=1"],
    });
  }, 120_000);

  afterAll(async () => {
    let offloaded = "?";
    if (c !== undefined) {
      const m = /^strata_select_rollup_jobs_total (\d+)/m.exec(await (await fetch(`${c.selectUrl}/metrics`)).text());
      offloaded = m?.[1] ?? "?";
    }
    await c?.stop();
    const s = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(
      `PromQL conformance through the cluster: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (skip list), ${counts.nowPassing} skip-listed now passing; ` +
        `${s} s: ${work.writes} remote writes (${work.series} series, ${work.samples} samples, ${(work.loadMs / 1000).toFixed(1)} s incl. flush, ${work.cacheResets} cache resets after backfills), ` +
        `${work.queries} HTTP queries (${(work.queryMs / 1000).toFixed(1)} s; ${offloaded} rollup jobs on worker threads)`,
    );
  });

  for (const file of files) {
    describe(file, () => {
      const cmds = parseScript(readFileSync(join(dir, file), "utf8"), file);
      const evals = cmds.filter((x): x is EvalCommand => x.kind === "eval");
      const outcomes = new Map<number, EvalOutcome>();
      beforeAll(async () => {
        if (c === undefined) throw new Error("cluster did not start");
        for (const o of await runScript(clusterTarget(c), cmds)) outcomes.set(o.line, o);
      }, 600_000);

      it.for(evals.map((e) => [`${file}:${e.line}`, e] as const))("%s", ([id, e], ctx) => {
        const o = outcomes.get(e.line);
        expect(o, `${id} did not run`).toBeDefined();
        const reason = skip.get(id);
        if (reason !== undefined) {
          if (o!.passed) {
            counts.nowPassing++;
            expect.fail(`${id} passes through the cluster but is skip-listed in-process (${reason})`);
          }
          counts.skipped++;
          ctx.skip(reason);
          return;
        }
        if (o!.passed) counts.passed++;
        else counts.failed++;
        expect(o!.error, `${id}: ${e.query}`).toBeUndefined();
      });
    });
  }
});
