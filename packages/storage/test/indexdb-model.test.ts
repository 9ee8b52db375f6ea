import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type LabelMatcher, type MatchType, type Tenant, compareStrings, encodeMetricName, labelsFromRecord, newMatcher } from "@strata/core";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { IndexDB } from "../src/indexdb/index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const D = 20_000;
const TENANTS: Tenant[] = [
  { accountID: 0, projectID: 0 },
  { accountID: 3, projectID: 1 },
];

interface ModelSeries {
  tenant: number;
  labels: Record<string, string>;
  days: Set<number>;
  deleted: boolean;
}

const seriesArb = fc.record({
  tenant: fc.integer({ min: 0, max: 1 }),
  name: fc.constantFrom("m1", "m2", "m3"),
  a: fc.constantFrom("", "x", "y", "xy", "x\u0000"),
  b: fc.constantFrom("", "x", "z"),
  c: fc.constantFrom("", "y"),
  day: fc.integer({ min: 0, max: 3 }),
});

const matcherArb: fc.Arbitrary<MatcherArg> = fc.oneof(
  fc.record({
    type: fc.constantFrom<MatchType>("=", "!="),
    name: fc.constantFrom("__name__", "a", "b", "c", "nope"),
    value: fc.constantFrom("", "x", "y", "m1", "m2", "xy", "x\u0000"),
  }),
  fc.record({
    type: fc.constantFrom<MatchType>("=~", "!~"),
    name: fc.constantFrom("__name__", "a", "b", "c", "nope"),
    value: fc.constantFrom("", "x", "x|y", "x.*", ".*", ".+", "y|", "m.", "m1|m3", "(x|z)", "[xy]+", "x.", "(?i)X"),
  }),
);

const queryArb: fc.Arbitrary<QueryArg> = fc.record({
  tenant: fc.integer({ min: 0, max: 1 }),
  matchers: fc.array(matcherArb, { minLength: 1, maxLength: 3 }),
  range: fc.constantFrom<[number, number] | "global">([0, 0], [1, 1], [0, 2], [2, 3], [3, 3], "global"),
  label: fc.constantFrom("__name__", "a", "b", "c"),
});

interface SeriesArg {
  tenant: number;
  name: string;
  a: string;
  b: string;
  c: string;
  day: number;
}
interface MatcherArg {
  type: MatchType;
  name: string;
  value: string;
}
interface QueryArg {
  tenant: number;
  matchers: MatcherArg[];
  range: [number, number] | "global";
  label: string;
}

type Op =
  | { kind: "add"; s: SeriesArg }
  | { kind: "flush" }
  | { kind: "reopen" }
  | { kind: "merge" }
  | { kind: "delete"; q: QueryArg }
  | { kind: "query"; q: QueryArg };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: seriesArb.map((s) => ({ kind: "add" as const, s })) },
  { weight: 1, arbitrary: fc.constant({ kind: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "merge" as const }) },
  { weight: 1, arbitrary: queryArb.map((q) => ({ kind: "delete" as const, q })) },
  { weight: 4, arbitrary: queryArb.map((q) => ({ kind: "query" as const, q })) },
);

function labelsOf(s: { name: string; a: string; b: string; c: string }): Record<string, string> {
  const rec: Record<string, string> = { __name__: s.name };
  for (const k of ["a", "b", "c"] as const) if (s[k] !== "") rec[k] = s[k];
  return rec;
}

const key = (tenant: number, labels: Record<string, string>): string => `${tenant}|${JSON.stringify(Object.entries(labels).sort())}`;

function modelMatch(model: ModelSeries[], tenant: number, ms: LabelMatcher[], range: [number, number] | "global"): ModelSeries[] {
  return model.filter(
    (s) =>
      !s.deleted &&
      s.tenant === tenant &&
      (range === "global" || [...s.days].some((d) => d >= range[0] && d <= range[1])) &&
      ms.every((m) => m.matches(s.labels[m.name] ?? "")),
  );
}

describe("IndexDB model", () => {
  it("search, label and status answers equal a naive model under adds, deletes, flushes, merges and reopen", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 60 }), fc.boolean(), async (ops, scanLabels) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-indexdb-model-"));
        dirs.push(dir);
        const opts = { flushIntervalMs: 0, idReserve: 3, labelsByNameMaxSeries: scanLabels ? 0 : 20_000, nameFilterMaxSeries: scanLabels ? 0 : 2000, table: { maxPendingItems: 16, maxInMemoryParts: 3, blockSize: 128, mergeFanIn: 3 } };
        let db = await IndexDB.open(dir, opts);
        const model: ModelSeries[] = [];
        const live = new Map<string, ModelSeries>();
        try {
          for (const op of ops) {
            switch (op.kind) {
              case "add": {
                const labels = labelsOf(op.s);
                const k = key(op.s.tenant, labels);
                let s = live.get(k);
                if (s === undefined) {
                  s = { tenant: op.s.tenant, labels, days: new Set(), deleted: false };
                  model.push(s);
                  live.set(k, s);
                }
                s.days.add(op.s.day);
                db.getOrCreateTSID(encodeMetricName({ tenant: TENANTS[op.s.tenant]!, labels: labelsFromRecord(labels) }), D + op.s.day);
                break;
              }
              case "flush":
                await db.flush();
                break;
              case "merge":
                await db.forceMerge();
                break;
              case "reopen":
                await db.close();
                db = await IndexDB.open(dir, opts);
                break;
              case "delete": {
                const ms = op.q.matchers.map((m) => newMatcher(m.type, m.name, m.value));
                const want = modelMatch(model, op.q.tenant, ms, "global");
                expect(db.deleteSeries(TENANTS[op.q.tenant]!, ms)).toBe(want.length);
                for (const s of want) {
                  s.deleted = true;
                  live.delete(key(s.tenant, s.labels));
                }
                break;
              }
              case "query": {
                const q = op.q;
                const ms = q.matchers.map((m) => newMatcher(m.type, m.name, m.value));
                const tenant = TENANTS[q.tenant]!;
                const [minT, maxT] = q.range === "global" ? [0, 1e15] : [(D + q.range[0]) * DAY, (D + q.range[1]) * DAY + DAY - 1];
                const want = modelMatch(model, q.tenant, ms, q.range);
                const got = db.searchTSIDs(tenant, ms, minT, maxT, 1e6);
                const names = got.map((t) => {
                  const b = db.metricNameByID(t.metricID)!;
                  return Buffer.from(b).toString("hex");
                });
                const wantNames = want.map((s) =>
                  Buffer.from(encodeMetricName({ tenant, labels: labelsFromRecord(s.labels) })).toString("hex"),
                );
                expect(names.sort()).toEqual(wantNames.sort());
                for (const t of got) expect([t.accountID, t.projectID]).toEqual([tenant.accountID, tenant.projectID]);
                // label values / names with and without matchers
                const vals = (list: ModelSeries[]): string[] =>
                  [...new Set(list.map((s) => s.labels[q.label]).filter((v): v is string => v !== undefined))].sort(compareStrings);
                expect(db.labelValues(tenant, q.label, ms, minT, maxT, 0)).toEqual(vals(want));
                expect(db.labelValues(tenant, q.label, [], minT, maxT, 0)).toEqual(vals(modelMatch(model, q.tenant, [], q.range)));
                const names2 = [...new Set(want.flatMap((s) => Object.keys(s.labels)))].sort(compareStrings);
                expect(db.labelNames(tenant, ms, minT, maxT, 0)).toEqual(names2);
                if (q.range !== "global" && q.range[0] === q.range[1]) {
                  const st = db.tsdbStatus(tenant, { date: D + q.range[0], topN: 100, matchers: ms });
                  expect(st.totalSeries).toBe(want.length);
                  expect(st.totalLabelValuePairs).toBe(want.reduce((n, s) => n + Object.keys(s.labels).length, 0));
                  const count = (f: (s: ModelSeries) => string[]): { name: string; value: number }[] => {
                    const mm = new Map<string, number>();
                    for (const s of want) for (const k of f(s)) mm.set(k, (mm.get(k) ?? 0) + 1);
                    return [...mm]
                      .map(([name, value]) => ({ name, value }))
                      .sort((a, b) => b.value - a.value || compareStrings(a.name, b.name));
                  };
                  expect(st.seriesCountByMetricName).toEqual(count((s) => [s.labels.__name__!]));
                  expect(st.seriesCountByLabelName).toEqual(count((s) => Object.keys(s.labels)));
                  expect(st.seriesCountByLabelValuePair).toEqual(count((s) => Object.entries(s.labels).map(([k, v]) => `${k}=${v}`)));
                  const valueCounts = new Map<string, Set<string>>();
                  for (const s of want) for (const [k, v] of Object.entries(s.labels)) (valueCounts.get(k) ?? valueCounts.set(k, new Set()).get(k)!).add(v);
                  expect(st.labelValueCountByLabelName).toEqual(
                    [...valueCounts]
                      .map(([name, vs]) => ({ name, value: vs.size }))
                      .sort((a, b) => b.value - a.value || compareStrings(a.name, b.name)),
                  );
                }
                expect(db.seriesCount(tenant)).toBe(model.filter((s) => !s.deleted && s.tenant === q.tenant).length);
                break;
              }
            }
          }
        } finally {
          await db.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
