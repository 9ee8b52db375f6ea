import { describe, expect, it } from "vitest";
import { AlertingRule, Group, parseRuleFile, type Datasource, type OutputSample, type VectorSample } from "../src/index.js";

const RULES = `groups:
  - name: g
    interval: 1s
    rules:
      - alert: SlowBurn
        expr: probe_slow > 0
        for: 8s
`;

/** A datasource that answers the rule query at once and holds the restore query until released. */
function heldRestore(activeAtSec: number): { ds: Datasource; release: () => void; asked: Promise<void> } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let asked!: () => void;
  const askedP = new Promise<void>((r) => (asked = r));
  const ds: Datasource = {
    async query(expr: string): Promise<readonly VectorSample[]> {
      if (expr.startsWith("last_over_time(ALERTS_FOR_STATE")) {
        asked();
        await gate;
        return [{ labels: [{ name: "__name__", value: "ALERTS_FOR_STATE" }, { name: "alertname", value: "SlowBurn" }, { name: "instance", value: "s" }], value: activeAtSec }];
      }
      return [{ labels: [{ name: "__name__", value: "probe_slow" }, { name: "instance", value: "s" }], value: 1 }];
    },
  };
  return { ds, release, asked: askedP };
}

/** The group of RULES reading from `ds`, restoring from it too. */
function groupOver(ds: Datasource, sink: (s: readonly OutputSample[]) => void = () => {}): Group {
  const [config] = parseRuleFile(RULES, "rules.yml");
  return new Group(config!, {
    datasource: ds,
    sink: { write: sink },
    defaultIntervalMs: 1000,
    defaultQueryOffsetMs: 0,
    externalLabels: {},
    externalURL: "http://alert",
    resendDelayMs: 60_000,
    restore: { datasource: ds, lookbackMs: 3_600_000 },
  });
}

describe("alert state restore (vmalert -remoteRead.url)", () => {
  it("never shows a restorable alert as newly pending while the restore query is in flight, and fires it on the restored activeAt", async () => {
    const now = 1_700_000_100_000;
    const activeAtSec = (now - 20_000) / 1000;
    const { ds, release, asked } = heldRestore(activeAtSec);
    const written: OutputSample[] = [];
    const g = groupOver(ds, (s) => written.push(...s));
    const rule = g.rules[0] as AlertingRule;
    const run = g.evalOnce(now);
    await asked;
    // What /api/v1/alerts reads while the restore query waits: nothing new yet.
    expect([...rule.active.values()].map((a) => a.state)).toEqual([]);
    release();
    await run;
    const alerts = [...rule.active.values()];
    expect(alerts.map((a) => [a.state, a.activeAt])).toEqual([["firing", activeAtSec * 1000]]);
    // Fired `for` after the restored activeAt, not at this evaluation.
    expect(alerts[0]!.firedAt).toBe(activeAtSec * 1000 + 8000);
    expect(written.find((s) => s.labels.some((l) => l.value === "ALERTS_FOR_STATE"))?.v).toBe(activeAtSec);
  });

  it("keeps a fresh pending alert when ALERTS_FOR_STATE has nothing older", async () => {
    const now = 1_700_000_100_000;
    const { ds, release } = heldRestore(now / 1000 + 5);
    release();
    const g = groupOver(ds);
    await g.evalOnce(now);
    const rule = g.rules[0] as AlertingRule;
    expect([...rule.active.values()].map((a) => [a.state, a.activeAt])).toEqual([["pending", now]]);
  });
});
