import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { compareLabels, formatDuration, formatLabels, labelsFromRecord, parseDuration, type Labels } from "@strata/core";
import { createEngine, MemoryQuerier, parseMetric, parseSeriesLine, type Engine, type QueryResult } from "@strata/promql";
import { parse as parseYaml } from "yaml";
import { AlertingRule, labelsKey } from "./alerting.js";
import { Group } from "./group.js";
import { loadRules } from "./load.js";
import type { Datasource, OutputSample, SampleSink, VectorSample } from "./types.js";

/**
 * Prometheus' rule unit tests (`promtool test rules`): rule_files, evaluation_interval,
 * group_eval_order and tests with input_series in series notation, alert_rule_test and
 * promql_expr_test, run with Strata's PromQL engine in process over an in-memory querier. The
 * same file passes or fails here as under promtool; failures are reported in promtool's words.
 */

interface ExpAlert {
  exp_labels?: Record<string, string>;
  exp_annotations?: Record<string, string>;
}

interface TestGroup {
  name?: string;
  interval?: string;
  input_series?: { series: string; values: string }[];
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: ExpAlert[] }[];
  promql_expr_test?: { expr: string; eval_time: string; exp_samples?: { labels: string; value: number | string }[] }[];
  external_labels?: Record<string, string>;
  external_url?: string;
}

interface TestFile {
  rule_files?: string[];
  evaluation_interval?: string;
  group_eval_order?: string[];
  tests?: TestGroup[];
}

export interface RuleTestResult {
  readonly ok: boolean;
  /** promtool-style report: "Unit Testing:  <file>\n  SUCCESS\n" or "  FAILED:\n…". */
  readonly output: string;
}

const dur = (s: string | undefined, def: number, what: string): number => {
  if (s === undefined) return def;
  try {
    return parseDuration(String(s));
  } catch (err) {
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
};

/** An instant query through the engine over the querier, as a rule sees it. */
export function engineDatasource(engine: Engine, querier: MemoryQuerier): Datasource {
  return {
    async query(expr, time, signal) {
      return vectorOf(await engine.instantQuery(querier, expr, time, signal));
    },
  };
}

export function vectorOf(r: QueryResult): VectorSample[] {
  switch (r.type) {
    case "vector":
      return r.labels.map((labels, i) => ({ labels, value: r.values[i]! }));
    case "scalar":
      return [{ labels: [], value: r.value }];
    default:
      throw new Error("rule result is not a vector or scalar");
  }
}

class MemorySink implements SampleSink {
  constructor(private readonly q: MemoryQuerier) {}
  write(samples: readonly OutputSample[]): void {
    for (const s of samples) {
      if (s.stale) this.q.appendStale(s.labels, s.t);
      else this.q.appendSample(s.labels, s.t, s.v);
    }
  }
}

interface LabelsAndAnnotations {
  readonly labels: Labels;
  readonly annotations: Labels;
}

const laKey = (x: LabelsAndAnnotations): string => `${formatLabels(x.labels)} ${formatLabels(x.annotations)}`;

function laString(list: readonly LabelsAndAnnotations[]): string {
  if (list.length === 0) return "[]";
  return `[\n${list.map((x, i) => `            ${i}:\n              Labels:${formatLabels(x.labels)}\n              Annotations:${formatLabels(x.annotations)}`).join("\n")}\n            ]`;
}

async function runGroup(tg: TestGroup, file: TestFile, dir: string, evalInterval: number): Promise<string[]> {
  const errs: string[] = [];
  const interval = dur(tg.interval, evalInterval, "interval");
  const querier = new MemoryQuerier();
  for (const s of tg.input_series ?? []) {
    const desc = parseSeriesLine(`${s.series} ${s.values}`);
    desc.values.forEach((v, i) => {
      if (v.omitted) return;
      if (v.stale) querier.appendStale(desc.labels, i * interval);
      else querier.appendSample(desc.labels, i * interval, v.value);
    });
  }
  const engine = createEngine({});
  const ds = engineDatasource(engine, querier);
  const configs = loadRules(file.rule_files ?? [], dir);
  const order = file.group_eval_order ?? [];
  const ordered = order.length === 0 ? configs : [...order.map((n) => configs.find((g) => g.name === n)).filter((g) => g !== undefined), ...configs.filter((g) => !order.includes(g.name))];
  const groups = ordered.map(
    (c) =>
      new Group(c, {
        datasource: ds,
        sink: new MemorySink(querier),
        defaultIntervalMs: evalInterval,
        defaultQueryOffsetMs: 0,
        externalLabels: tg.external_labels ?? {},
        externalURL: tg.external_url ?? "",
        resendDelayMs: 60_000,
      }),
  );
  const alertTests = new Map<number, NonNullable<TestGroup["alert_rule_test"]>>();
  let maxT = 0;
  for (const at of tg.alert_rule_test ?? []) {
    const t = dur(at.eval_time, 0, "eval_time");
    maxT = Math.max(maxT, t);
    alertTests.set(t, [...(alertTests.get(t) ?? []), at]);
  }
  for (const pt of tg.promql_expr_test ?? []) maxT = Math.max(maxT, dur(pt.eval_time, 0, "eval_time"));
  const alertTimes = [...alertTests.keys()].sort((a, b) => a - b);
  let curr = 0;
  for (let ts = 0; ts <= maxT; ts += evalInterval) {
    for (const g of groups) {
      await g.evalOnce(ts);
      for (const r of g.rules) if (r.lastError !== "") errs.push(`    rule: ${r.name}, time: ${formatDuration(ts)}, err: ${r.lastError}`);
    }
    if (errs.length > 0) return errs;
    while (curr < alertTimes.length && ts <= alertTimes[curr]! && alertTimes[curr]! < ts + evalInterval) {
      const t = alertTimes[curr]!;
      const got = new Map<string, LabelsAndAnnotations[]>();
      for (const g of groups) {
        for (const r of g.rules) {
          if (!(r instanceof AlertingRule)) continue;
          const list = got.get(r.name) ?? [];
          for (const a of r.active.values()) {
            if (a.state === "firing") list.push({ labels: a.labels, annotations: labelsFromRecord(a.annotations) });
          }
          got.set(r.name, list);
        }
      }
      for (const tc of alertTests.get(t)!) {
        const gotAlerts = [...(got.get(tc.alertname) ?? [])].sort((a, b) => compareLabels(a.labels, b.labels) || compareLabels(a.annotations, b.annotations));
        const exp = (tc.exp_alerts ?? [])
          .map((e) => ({
            labels: labelsFromRecord({ ...stringRecord(e.exp_labels), alertname: tc.alertname }),
            annotations: labelsFromRecord(stringRecord(e.exp_annotations)),
          }))
          .sort((a, b) => compareLabels(a.labels, b.labels) || compareLabels(a.annotations, b.annotations));
        if (gotAlerts.map(laKey).join("\n") !== exp.map(laKey).join("\n")) {
          const name = tg.name ? `    name: ${tg.name},\n` : "";
          errs.push(`${name}    alertname: ${tc.alertname}, time: ${formatDuration(t)}, \n        exp:${laString(exp)}, \n        got:${laString(gotAlerts)}`);
        }
      }
      curr++;
    }
  }
  for (const pt of tg.promql_expr_test ?? []) {
    const t = dur(pt.eval_time, 0, "eval_time");
    let got: VectorSample[];
    try {
      got = vectorOf(await engine.instantQuery(querier, pt.expr, t));
    } catch (err) {
      errs.push(`    expr: ${JSON.stringify(pt.expr)}, time: ${formatDuration(t)}, err: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const exp = (pt.exp_samples ?? []).map((s) => ({ labels: parseMetric(s.labels), value: Number(s.value) }));
    const sortS = (a: VectorSample, b: VectorSample): number => compareLabels(a.labels, b.labels);
    got.sort(sortS);
    exp.sort(sortS);
    const same = got.length === exp.length && got.every((g, i) => labelsKey(g.labels) === labelsKey(exp[i]!.labels) && (g.value === exp[i]!.value || (Number.isNaN(g.value) && Number.isNaN(exp[i]!.value))));
    if (!same) {
      const str = (l: readonly VectorSample[]): string => `[${l.map((s) => `${formatLabels(s.labels)} ${s.value}`).join(", ")}]`;
      errs.push(`    expr: ${JSON.stringify(pt.expr)}, time: ${formatDuration(t)},\n        exp: ${str(exp)}\n        got: ${str(got)}`);
    }
  }
  return errs;
}

function stringRecord(r: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r ?? {})) out[k] = String(v);
  return out;
}

/** Runs one test file. */
export async function runRuleTestFile(path: string): Promise<RuleTestResult> {
  let out = `Unit Testing:  ${path}\n`;
  let file: TestFile;
  try {
    file = (parseYaml(readFileSync(path, "utf8")) ?? {}) as TestFile;
  } catch (err) {
    return { ok: false, output: `${out}  FAILED:\n${err instanceof Error ? err.message : String(err)}\n` };
  }
  const errs: string[] = [];
  try {
    const evalInterval = dur(file.evaluation_interval, 60_000, "evaluation_interval");
    for (const tg of file.tests ?? []) errs.push(...(await runGroup(tg, file, dirname(path), evalInterval)));
  } catch (err) {
    errs.push(`    ${err instanceof Error ? err.message : String(err)}`);
  }
  if (errs.length > 0) {
    out += `  FAILED:\n${errs.join("\n")}\n`;
    return { ok: false, output: out };
  }
  return { ok: true, output: `${out}  SUCCESS\n` };
}
