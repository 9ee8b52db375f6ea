import { METRIC_NAME_LABEL, normalizeLabels, xxhash64Small } from "@strata/core";
import { AlertingRule, labelsKey, setLabel } from "./alerting.js";
import type { GroupConfig, RecordingRuleConfig } from "./rulefile.js";
import type { Datasource, Notifier, OutputSample, SampleSink } from "./types.js";

/**
 * A rule group: its rules evaluated in order at each interval, at timestamps aligned as
 * Prometheus aligns them (an offset from the hash of the group's name and file), results written
 * to the sink with stale markers for series that ended, alerts handed to the notifier.
 */

export class RecordingRule {
  health: "ok" | "err" | "unknown" = "unknown";
  lastError = "";
  lastEvaluation = 0;
  evaluationMs = 0;
  constructor(readonly config: RecordingRuleConfig, readonly limit: number) {}
  get name(): string {
    return this.config.name;
  }
}

export type Rule = AlertingRule | RecordingRule;

export interface GroupOptions {
  readonly datasource: Datasource;
  readonly sink: SampleSink;
  readonly notifier?: Notifier;
  /** Used when the group has no interval of its own. */
  readonly defaultIntervalMs: number;
  readonly defaultQueryOffsetMs: number;
  /** Added to notifications and rendered as $externalLabels; the sink adds them to series. */
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly externalURL: string;
  readonly resendDelayMs: number;
  /** Restores alert state from ALERTS_FOR_STATE at the first evaluation (vmalert -remoteRead.url). */
  readonly restore?: { readonly datasource: Datasource; readonly lookbackMs: number };
  /** Called when a rule fails or restores state (for logs). */
  readonly onEvent?: (event: { group: string; rule: string; error?: string; restored?: number }) => void;
  /** Called after each scheduled evaluation with its duration (for /metrics). */
  readonly onIteration?: (group: Group, durationMs: number) => void;
}

/** Prometheus' labels.Hash of {file=…, name=…} (xxhash64 of name, 0xff, value, 0xff, …). */
function groupHash(name: string, file: string): bigint {
  const parts: Buffer[] = [];
  for (const [n, v] of [["file", file], ["name", name]] as const) parts.push(Buffer.from(n), Buffer.from([0xff]), Buffer.from(v), Buffer.from([0xff]));
  return xxhash64Small(Buffer.concat(parts));
}

export class Group {
  readonly rules: Rule[];
  readonly intervalMs: number;
  readonly queryOffsetMs: number;
  /** Nanoseconds into each interval at which this group evaluates. */
  private readonly offsetNs: bigint;
  /** Series each rule wrote at its last evaluation, to end the ones that vanish. */
  private readonly lastSeries = new Map<Rule, Map<string, OutputSample["labels"]>>();
  lastEvaluation = 0;
  evaluationMs = 0;
  iterations = 0;
  missedIterations = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    readonly config: GroupConfig,
    private readonly opts: GroupOptions,
  ) {
    this.intervalMs = config.intervalMs ?? opts.defaultIntervalMs;
    this.queryOffsetMs = config.queryOffsetMs ?? opts.defaultQueryOffsetMs;
    this.rules = config.rules.map((r) => (r.kind === "alerting" ? new AlertingRule(r, config.limit) : new RecordingRule(r, config.limit)));
    this.offsetNs = groupHash(config.name, config.file) % BigInt(this.intervalMs * 1e6);
  }

  get name(): string {
    return this.config.name;
  }

  get file(): string {
    return this.config.file;
  }

  /** Prometheus' EvalTimestamp: the latest aligned evaluation time at or before `nowMs`. */
  evalTimestamp(nowMs: number): number {
    const interval = BigInt(this.intervalMs * 1e6);
    const adj = BigInt(Math.floor(nowMs)) * 1_000_000n - this.offsetNs;
    const base = adj - (((adj % interval) + interval) % interval);
    return Number((base + this.offsetNs) / 1_000_000n);
  }

  /** Copies alert state from the group this one replaces (reload keeps alerts with the same rule). */
  adoptStateFrom(old: Group): void {
    for (const r of this.rules) {
      if (!(r instanceof AlertingRule)) continue;
      const prev = old.rules.find((o): o is AlertingRule => o instanceof AlertingRule && o.name === r.name && o.config.expr === r.config.expr);
      if (prev === undefined) continue;
      for (const [k, a] of prev.active) r.active.set(k, a);
      r.restored = prev.restored;
    }
  }

  /**
   * Evaluates every rule once at `ts` (ms). lastEvaluation (group and rules) is the wall time an
   * evaluation started, as in Prometheus' API; `ts` is the time the queries and samples use.
   */
  async evalOnce(ts: number): Promise<void> {
    const t0 = performance.now();
    const started = Date.now();
    const queryTs = ts - this.queryOffsetMs;
    for (const rule of this.rules) {
      const rt0 = performance.now();
      rule.lastEvaluation = Date.now();
      try {
        const samples = rule instanceof AlertingRule ? await this.evalAlerting(rule, ts, queryTs) : await this.evalRecording(rule, queryTs);
        this.writeWithStale(rule, samples, queryTs);
        rule.health = "ok";
        rule.lastError = "";
      } catch (err) {
        rule.health = "err";
        rule.lastError = err instanceof Error ? err.message : String(err);
        this.opts.onEvent?.({ group: this.name, rule: rule.name, error: rule.lastError });
      }
      rule.evaluationMs = performance.now() - rt0;
    }
    this.lastEvaluation = started;
    this.evaluationMs = performance.now() - t0;
    this.iterations++;
  }

  private async evalRecording(rule: RecordingRule, queryTs: number): Promise<OutputSample[]> {
    const vector = await this.opts.datasource.query(rule.config.expr, queryTs, this.abort.signal);
    const out: OutputSample[] = [];
    const seen = new Set<string>();
    for (const s of vector) {
      const labels = [...s.labels];
      setLabel(labels, METRIC_NAME_LABEL, rule.config.name);
      for (const [k, v] of Object.entries(this.config.labels)) setLabel(labels, k, v);
      for (const [k, v] of Object.entries(rule.config.labels)) setLabel(labels, k, v);
      const norm = normalizeLabels(labels);
      const key = labelsKey(norm);
      if (seen.has(key)) throw new Error("vector contains metrics with the same labelset after applying rule labels");
      seen.add(key);
      out.push({ labels: norm, t: queryTs, v: s.value, stale: false });
    }
    if (rule.limit > 0 && out.length > rule.limit) throw new Error(`exceeded limit of ${rule.limit} with ${out.length} series`);
    return out;
  }

  private async evalAlerting(rule: AlertingRule, ts: number, queryTs: number): Promise<OutputSample[]> {
    const ctx = {
      ts,
      queryTs,
      externalLabels: this.opts.externalLabels,
      externalURL: this.opts.externalURL,
      datasource: this.opts.datasource,
      signal: this.abort.signal,
      groupLabels: this.config.labels,
    };
    const vector = await this.opts.datasource.query(rule.config.expr, queryTs, this.abort.signal);
    const found = await rule.buildAlerts(vector, ctx);
    if (!rule.restored) {
      if (this.opts.restore === undefined) rule.restored = true;
      else {
        try {
          const n = await rule.restore(this.opts.restore.datasource, ts, this.opts.restore.lookbackMs, found, this.abort.signal);
          if (n > 0) this.opts.onEvent?.({ group: this.name, rule: rule.name, restored: n });
        } catch (err) {
          this.opts.onEvent?.({ group: this.name, rule: rule.name, error: `cannot restore alert state: ${err instanceof Error ? err.message : String(err)}` });
        }
      }
    }
    rule.merge(found);
    const samples = rule.step(new Set(found.keys()), ts, queryTs);
    if (this.opts.notifier !== undefined) {
      const generatorURL = `${this.opts.externalURL.replace(/\/$/, "")}/graph?g0.expr=${encodeURIComponent(rule.config.expr)}&g0.tab=1`;
      const alerts = rule.alertsToSend(ts, this.opts.resendDelayMs, this.intervalMs, this.opts.externalLabels, generatorURL);
      if (alerts.length > 0) this.opts.notifier.send(alerts);
    }
    return samples;
  }

  /** Writes the samples, and stale markers for the rule's series that ended. */
  private writeWithStale(rule: Rule, samples: readonly OutputSample[], t: number): void {
    const now = new Map<string, OutputSample["labels"]>();
    const out: OutputSample[] = [...samples];
    for (const s of samples) now.set(labelsKey(s.labels), s.labels);
    const prev = this.lastSeries.get(rule);
    if (prev !== undefined) for (const [k, labels] of prev) if (!now.has(k)) out.push({ labels, t, v: NaN, stale: true });
    this.lastSeries.set(rule, now);
    if (out.length > 0) this.opts.sink.write(out);
  }

  /** Evaluates at every aligned interval until stop(); counts missed iterations. */
  start(now: () => number = Date.now): void {
    let next = this.evalTimestamp(now()) + this.intervalMs;
    const tick = (): void => {
      if (this.stopped) return;
      const cur = now();
      const missed = Math.floor((cur - next) / this.intervalMs);
      if (missed > 0) {
        this.missedIterations += missed;
        next += missed * this.intervalMs;
      }
      const ts = next;
      next += this.intervalMs;
      this.running = this.evalOnce(ts).finally(() => {
        this.running = undefined;
        this.opts.onIteration?.(this, this.evaluationMs);
        if (!this.stopped) this.timer = setTimeout(tick, Math.max(0, next - now()));
      });
    };
    this.timer = setTimeout(tick, Math.max(0, next - now()));
  }

  /** Stops the schedule and waits for a running evaluation (aborting its queries). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.abort.abort(new Error("group stopped"));
    await this.running?.catch(() => undefined);
  }
}
