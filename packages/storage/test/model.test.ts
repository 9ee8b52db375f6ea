import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { newMatcher, type LabelMatcher, type Tenant } from "@strata/core";
import { isStaleNaN, mergeSeriesBlocks, STALE_NAN, type Storage } from "@strata/storage";
import { batchOf, nameBytes, openTestStorage, rmDir, tmpDir, type Row } from "./helpers.js";

/**
 * Model-based property test: random interleavings of writes (out of order, duplicates, NaN,
 * stale markers, -0, two tenants, across a month boundary), flushes, merges, deletes, clock
 * advances (retention) and reopens; after each step every search / label / count answer must
 * equal what a plain in-memory model computes.
 */

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 29); // two days before a month boundary: two partitions
const RETENTION = 2 * DAY;
const TENANTS: Tenant[] = [
  { accountID: 0, projectID: 0 },
  { accountID: 7, projectID: 3 },
];

type Op =
  | { kind: "write"; rows: Row[] }
  | { kind: "flush" }
  | { kind: "merge" }
  | { kind: "delete"; tenant: number; matcher: [string, string] }
  | { kind: "advance"; ms: number }
  | { kind: "reopen" };

const labelsArb = fc.record({
  __name__: fc.constantFrom("up", "cpu", "mem"),
  job: fc.constantFrom("a", "b"),
  instance: fc.constantFrom("x", "y", ""),
});
const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -5, max: 50 }).map((n) => n / 4) },
  { weight: 1, arbitrary: fc.constant(NaN) },
  { weight: 1, arbitrary: fc.constant(STALE_NAN) },
  { weight: 1, arbitrary: fc.constant(-0) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);
const rowArb = fc.record({
  tenant: fc.nat({ max: 1 }).map((i) => TENANTS[i]!),
  labels: labelsArb.map((l) => Object.fromEntries(Object.entries(l).filter(([, v]) => v !== ""))),
  t: fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 9 })).map(([d, k]) => T0 + d * DAY + k * 7000),
  v: valueArb,
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.array(rowArb, { minLength: 1, maxLength: 60 }).map((rows) => ({ kind: "write" as const, rows })) },
  { weight: 2, arbitrary: fc.constant({ kind: "flush" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "merge" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      tenant: fc.nat({ max: 1 }),
      matcher: fc.constantFrom<[string, string]>(["__name__", "up"], ["job", "b"], ["instance", "x"]),
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: DAY / 4, max: DAY }).map((ms) => ({ kind: "advance" as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
);

interface ModelSeries {
  tenant: Tenant;
  labels: Record<string, string>;
  ts: number[];
  /** valueKey of each value: JS arrays of doubles may drop a NaN's payload, so no numbers here. */
  vs: string[];
  days: Set<number>;
}

class Model {
  series = new Map<string, ModelSeries>();
  now = T0 + 2 * DAY;
  /**
   * Whether the index's retention prune has run for the current clock. A series with no sample
   * on or after the retention's first day is pruned from the index when the storage applies the
   * retention (on open, on forceMerge, and every minute, in the background); forceMerge waits
   * for it, so after a merge (and until the clock moves) the count is exact.
   */
  pruneSettled = false;
  constructor(readonly dedup: number) {}

  /** True when every sample of s is on a day before the retention's first day: prunable. */
  prunable(s: ModelSeries): boolean {
    const minDay = Math.floor((this.now - RETENTION) / DAY);
    return ![...s.days].some((d) => d >= minDay);
  }

  /**
   * The index may count a prunable series until the prune has run: [series surely counted,
   * series possibly counted], the same bound twice once the prune settled.
   */
  countRange(list: ModelSeries[]): [number, number] {
    const live = list.filter((x) => !this.prunable(x)).length;
    return [live, this.pruneSettled ? live : list.length];
  }

  write(rows: Row[]): void {
    const cutoff = this.now - RETENTION;
    for (const r of rows) {
      if (r.t < cutoff) continue;
      const key = Buffer.from(nameBytes(r.tenant, r.labels)).toString("hex");
      let s = this.series.get(key);
      if (s === undefined) this.series.set(key, (s = { tenant: r.tenant, labels: r.labels, ts: [], vs: [], days: new Set() }));
      s.ts.push(r.t);
      s.vs.push(valueKey(r.v));
      s.days.add(Math.floor(r.t / DAY));
    }
  }

  matches(s: ModelSeries, tenant: Tenant, ms: readonly LabelMatcher[]): boolean {
    return s.tenant.accountID === tenant.accountID && s.tenant.projectID === tenant.projectID && ms.every((m) => m.matches(s.labels[m.name] ?? ""));
  }

  /** Removes the matching series; the range of counts the storage may report (see countRange). */
  delete(tenant: Tenant, ms: readonly LabelMatcher[]): [number, number] {
    const gone: ModelSeries[] = [];
    for (const [k, s] of this.series) {
      if (this.matches(s, tenant, ms)) {
        this.series.delete(k);
        gone.push(s);
      }
    }
    return this.countRange(gone);
  }

  search(tenant: Tenant, ms: readonly LabelMatcher[], minT: number, maxT: number): Map<string, [number, string][]> {
    const lo = Math.max(minT, this.now - RETENTION);
    const out = new Map<string, [number, string][]>();
    for (const [k, s] of this.series) {
      if (!this.matches(s, tenant, ms)) continue;
      // Independent of the package's helpers: group by timestamp, then by dedup interval.
      const byT = new Map<number, string>();
      s.ts.forEach((t, i) => {
        const v = s.vs[i]!;
        const old = byT.get(t);
        byT.set(t, old === undefined || rank(v, old) > 0 ? v : old);
      });
      let samples = [...byT.entries()].sort((a, b) => a[0] - b[0]);
      if (this.dedup > 0) {
        const byGroup = new Map<number, [number, string]>();
        for (const sm of samples) byGroup.set(Math.ceil(sm[0] / this.dedup), sm); // sorted: last wins
        samples = [...byGroup.values()];
      }
      const got = samples.filter(([t]) => t >= lo && t <= maxT);
      if (got.length > 0) out.set(k, got);
    }
    return out;
  }

  activeOn(tenant: Tenant, ms: readonly LabelMatcher[], minT: number, maxT: number): ModelSeries[] {
    const d0 = Math.floor(Math.max(minT, this.now - RETENTION) / DAY);
    const d1 = Math.floor(maxT / DAY);
    return [...this.series.values()].filter((s) => this.matches(s, tenant, ms) && [...s.days].some((d) => d >= d0 && d <= d1));
  }
}

/** Which of two values (valueKeys) at one timestamp is kept: non-stale > stale, number > NaN, larger, larger bits. */
function rank(a: string, b: string): number {
  const cls = (k: string): number => (k === "stale" ? 0 : k === "NaN" ? 1 : 2);
  if (cls(a) !== cls(b)) return cls(a) - cls(b);
  if (cls(a) < 2 || a === b) return 0;
  const x = keyValue(a);
  const y = keyValue(b);
  if (x !== y) return x > y ? 1 : -1;
  return a > b ? 1 : -1; // 0 and -0: the larger bits
}

/**
 * A value as the storage must keep it: "stale" for the Prometheus stale marker (either NaN form,
 * see isStaleNaN), "NaN" for any other NaN, the exact bits otherwise (so -0 ≠ 0).
 */
function valueKey(x: number): string {
  if (isStaleNaN(x)) return "stale";
  if (Number.isNaN(x)) return "NaN";
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString("hex");
}

function keyValue(k: string): number {
  if (k === "stale") return STALE_NAN;
  if (k === "NaN") return NaN;
  return Buffer.from(k, "hex").readDoubleBE();
}

/** Storage answers as valueKeys, taken straight from the decoded Float64Arrays. */
function dumpKeys(s: Storage, tenant: Tenant, ms: readonly LabelMatcher[], minT: number, maxT: number): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const c = s.search(tenant, ms, minT, maxT);
  while (c.next()) {
    const { metricName, blocks } = c.at();
    const { timestamps, values } = mergeSeriesBlocks(blocks, c.minT, c.maxT, s.dedupIntervalMs);
    if (timestamps.length === 0) continue;
    out.set(Buffer.from(metricName).toString("hex"), Array.from(timestamps, (t, i) => `${t}:${valueKey(values[i]!)}`));
  }
  return out;
}

function modelKeys(m: Map<string, [number, string][]>): Map<string, string[]> {
  return new Map([...m].map(([k, v]) => [k, v.map(([t, x]) => `${t}:${x}`)]));
}

const QUERIES: [string, LabelMatcher[]][] = [
  ["all up", [newMatcher("=", "__name__", "up")]],
  ["regex name", [newMatcher("=~", "__name__", "cpu|mem")]],
  ["neq job", [newMatcher("!=", "job", "a"), newMatcher("=~", "__name__", ".+")]],
  ["absent instance", [newMatcher("=", "instance", ""), newMatcher("=~", "__name__", ".*u.*")]],
  ["nre instance", [newMatcher("!~", "instance", "x|y"), newMatcher("!=", "__name__", "")]],
];

function expectWithin(got: number, [lo, hi]: [number, number]): void {
  if (lo === hi) expect(got).toBe(lo);
  else {
    expect(got).toBeGreaterThanOrEqual(lo);
    expect(got).toBeLessThanOrEqual(hi);
  }
}

async function check(s: Storage, m: Model): Promise<void> {
  await s.forceFlush();
  for (const tenant of TENANTS) {
    for (const [, ms] of QUERIES) {
      for (const [minT, maxT] of [
        [T0 - DAY, T0 + 10 * DAY],
        [T0 + DAY + 3000, T0 + 3 * DAY + 100_000],
      ] as const) {
        expect(dumpKeys(s, tenant, ms, minT, maxT)).toEqual(modelKeys(m.search(tenant, ms, minT, maxT)));
        const active = m.activeOn(tenant, ms, minT, maxT);
        expect(s.labelValues(tenant, "job", ms, minT, maxT)).toEqual([...new Set(active.map((x) => x.labels.job ?? ""))].filter((x) => x !== "").sort());
        expect(s.labelNames(tenant, ms, minT, maxT)).toEqual([...new Set(active.flatMap((x) => Object.keys(x.labels)))].sort());
      }
    }
    expectWithin(s.seriesCount(tenant), m.countRange([...m.series.values()].filter((x) => m.matches(x, tenant, []))));
    const day = Math.floor(m.now / DAY) - 1;
    const st = s.tsdbStatus(tenant, { date: day, topN: 10 });
    const onDay = [...m.series.values()].filter((x) => m.matches(x, tenant, []) && x.days.has(day) && day >= Math.floor((m.now - RETENTION) / DAY));
    expect(st.totalSeries).toBe(onDay.length);
  }
}

describe("storage model", () => {
  it("every answer equals the in-memory model under random interleavings", { timeout: Number(process.env.MODEL_RUNS ?? 8) * 15_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 10 }), fc.constantFrom(0, 15_000), async (ops, dedup) => {
        const dir = tmpDir();
        const m = new Model(dedup);
        const open = (): Promise<Storage> => openTestStorage(dir, { now: () => m.now, retentionMs: RETENTION, dedupIntervalMs: dedup, maxPartsPerPartition: 2, mergeFanIn: 2 });
        let s = await open();
        try {
          for (const op of ops) {
            // A step that takes very long is reported with its operation (hang diagnosis).
            const watchdog = setTimeout(() => console.error(`model step still running after 20 s: ${op.kind}`, JSON.stringify(ops.map((o) => o.kind))), 20_000);
            try {
              switch (op.kind) {
                case "write":
                  await s.addRows(batchOf(op.rows));
                  m.write(op.rows);
                  break;
                case "flush":
                  await s.forceFlush();
                  break;
                case "merge":
                  await s.forceMerge();
                  m.pruneSettled = true;
                  break;
                case "delete": {
                  const tenant = TENANTS[op.tenant]!;
                  const ms = [newMatcher("=", op.matcher[0], op.matcher[1])];
                  expectWithin(await s.deleteSeries(tenant, ms), m.delete(tenant, ms));
                  break;
                }
                case "advance":
                  m.now += op.ms;
                  m.pruneSettled = false;
                  break;
                case "reopen":
                  await s.close();
                  s = await open();
                  break;
              }
              await check(s, m);
            } finally {
              // A step that failed is no hang: its watchdog must not fire later.
              clearTimeout(watchdog);
            }
          }
        } finally {
          await s.close();
          rmDir(dir);
        }
      }),
      { numRuns: Number(process.env.MODEL_RUNS ?? 8), ...(process.env.MODEL_SEED ? { seed: Number(process.env.MODEL_SEED), path: process.env.MODEL_PATH ?? "0", endOnFailure: true } : {}) },
    );
  });
});
