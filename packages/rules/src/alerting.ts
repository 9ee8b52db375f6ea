import { compareStrings, METRIC_NAME_LABEL, normalizeLabels, type Label, type Labels } from "@strata/core";
import type { AlertingRuleConfig } from "./rulefile.js";
import type { Sample as TemplateSample } from "./template/funcs.js";
import type { TemplateData } from "./template/exec.js";
import type { Datasource, NotifierAlert, OutputSample, VectorSample } from "./types.js";

/**
 * An alerting rule's state machine, as Prometheus' rules/alerting.go: each evaluation turns the
 * query's answer into alerts (labels and annotations rendered), pending alerts fire once they
 * were active for `for`, firing alerts stay for `keep_firing_for` after the condition clears,
 * resolved alerts are kept 15 minutes so the resolution reaches Alertmanager.
 */

export type AlertState = "inactive" | "pending" | "firing";

export interface Alert {
  /** Sorted labels including alertname (without external labels). */
  readonly labels: Labels;
  readonly key: string;
  annotations: Record<string, string>;
  state: AlertState;
  value: number;
  /** Times in ms (0: unset). */
  activeAt: number;
  firedAt: number;
  resolvedAt: number;
  lastSentAt: number;
  validUntil: number;
  keepFiringSince: number;
  restored: boolean;
}

const RESOLVED_RETENTION_MS = 15 * 60_000;
export const ALERT_METRIC = "ALERTS";
export const ALERT_FOR_STATE_METRIC = "ALERTS_FOR_STATE";

/**
 * A label set as one string, for maps keyed by series. Built with join() so the key is one flat
 * string: `+=` leaves a chain of cons strings (a 32-byte node per label plus its pieces) in every
 * key the rules' state keeps between evaluations.
 */
export function labelsKey(labels: Labels): string {
  const parts = new Array<string>(labels.length);
  for (let i = 0; i < labels.length; i++) parts[i] = `${labels[i]!.name}\u0000${labels[i]!.value}\u0001`;
  return parts.join("");
}

function toMap(labels: Labels): Map<string, string> {
  return new Map(labels.map((l) => [l.name, l.value]));
}

function toRecord(labels: Labels): Record<string, string> {
  const r: Record<string, string> = {};
  for (const l of labels) r[l.name] = l.value;
  return r;
}

/** Sets `name` (an empty value deletes it), keeping the set sorted. */
export function setLabel(labels: Label[], name: string, value: string): void {
  const i = labels.findIndex((l) => l.name === name);
  if (i >= 0) labels.splice(i, 1);
  if (value === "") return;
  let j = 0;
  while (j < labels.length && compareStrings(labels[j]!.name, name) < 0) j++;
  labels.splice(j, 0, { name, value });
}

export interface EvalContext {
  readonly ts: number;
  /** The query time (ts minus the group's query_offset). */
  readonly queryTs: number;
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly externalURL: string;
  readonly datasource: Datasource;
  readonly signal?: AbortSignal;
  readonly groupLabels: Readonly<Record<string, string>>;
}

export class AlertingRule {
  readonly active = new Map<string, Alert>();
  /** Set once state was restored (or there was nothing to restore). */
  restored = false;
  health: "ok" | "err" | "unknown" = "unknown";
  lastError = "";
  lastEvaluation = 0;
  evaluationMs = 0;
  /** Warnings from template rendering in the last evaluation. */
  templateErrors: string[] = [];

  constructor(readonly config: AlertingRuleConfig, readonly limit: number) {}

  get name(): string {
    return this.config.name;
  }

  /**
   * Builds this evaluation's alerts from the query's answer. Template errors do not fail the
   * rule (Prometheus renders `<error expanding template: …>` and logs); duplicate label sets do.
   */
  async buildAlerts(vector: readonly VectorSample[], ctx: EvalContext): Promise<Map<string, Alert>> {
    const out = new Map<string, Alert>();
    const templateErrors: string[] = [];
    const query = async (q: string): Promise<TemplateSample[]> => {
      const res = await ctx.datasource.query(q, ctx.queryTs, ctx.signal);
      return res.map((s) => ({ labels: toMap(s.labels), value: s.value }));
    };
    for (const s of vector) {
      const data: TemplateData = { labels: toRecord(s.labels), externalLabels: ctx.externalLabels, externalURL: ctx.externalURL, value: s.value };
      const labels = s.labels.filter((l) => l.name !== METRIC_NAME_LABEL);
      for (const [k, v] of Object.entries(ctx.groupLabels)) setLabel(labels, k, v);
      for (const [k, t] of Object.entries(this.config.labels)) {
        const r = await t.render(data, query);
        if (r.error !== undefined) templateErrors.push(`label ${k}: ${r.error}`);
        setLabel(labels, k, r.text);
      }
      setLabel(labels, "alertname", this.config.name);
      const annotations: Record<string, string> = {};
      for (const [k, t] of Object.entries(this.config.annotations)) {
        const r = await t.render(data, query);
        if (r.error !== undefined) templateErrors.push(`annotation ${k}: ${r.error}`);
        annotations[k] = r.text;
      }
      const norm = normalizeLabels(labels);
      const key = labelsKey(norm);
      if (out.has(key)) throw new Error("vector contains metrics with the same labelset after applying alert labels");
      out.set(key, {
        labels: norm,
        key,
        annotations,
        state: "pending",
        value: s.value,
        activeAt: ctx.ts,
        firedAt: 0,
        resolvedAt: 0,
        lastSentAt: 0,
        validUntil: 0,
        keepFiringSince: 0,
        restored: false,
      });
    }
    this.templateErrors = templateErrors;
    return out;
  }

  /** Merges this evaluation's alerts into the active set (after restore, before state changes). */
  merge(found: Map<string, Alert>): void {
    for (const [k, a] of found) {
      const cur = this.active.get(k);
      if (cur !== undefined && cur.state !== "inactive") {
        cur.value = a.value;
        cur.annotations = a.annotations;
        continue;
      }
      this.active.set(k, a);
    }
  }

  /**
   * Moves alerts through pending → firing → inactive at `ts` for the keys `found` holds, and
   * returns the ALERTS and ALERTS_FOR_STATE samples (at `sampleTs`).
   */
  step(found: ReadonlySet<string>, ts: number, sampleTs: number): OutputSample[] {
    const out: OutputSample[] = [];
    let numActive = 0;
    for (const [k, a] of this.active) {
      if (!found.has(k)) {
        let keepFiring = false;
        if (a.state === "firing" && this.config.keepFiringForMs > 0) {
          if (a.keepFiringSince === 0) a.keepFiringSince = ts;
          if (ts - a.keepFiringSince < this.config.keepFiringForMs) keepFiring = true;
        }
        if (a.state === "pending" || (a.resolvedAt !== 0 && ts - a.resolvedAt > RESOLVED_RETENTION_MS)) this.active.delete(k);
        if (a.state !== "inactive" && !keepFiring) {
          a.state = "inactive";
          a.resolvedAt = ts;
        }
        if (!keepFiring) continue;
      } else {
        a.keepFiringSince = 0;
      }
      numActive++;
      if (a.state === "pending" && ts - a.activeAt >= this.config.forMs) {
        a.state = "firing";
        a.firedAt = a.restored ? Math.min(ts, a.activeAt + this.config.forMs) : ts;
      }
      const alertsLabels = [...a.labels];
      setLabel(alertsLabels, METRIC_NAME_LABEL, ALERT_METRIC);
      setLabel(alertsLabels, "alertstate", a.state);
      out.push({ labels: alertsLabels, t: sampleTs, v: 1, stale: false });
      const forLabels = [...a.labels];
      setLabel(forLabels, METRIC_NAME_LABEL, ALERT_FOR_STATE_METRIC);
      out.push({ labels: forLabels, t: sampleTs, v: Math.floor(a.activeAt / 1000), stale: false });
    }
    if (this.limit > 0 && numActive > this.limit) {
      this.active.clear();
      throw new Error(`exceeded limit of ${this.limit} with ${numActive} alerts`);
    }
    return out;
  }

  /**
   * Restores `activeAt` of pending alerts from ALERTS_FOR_STATE (vmalert's -remoteRead.url):
   * `last_over_time(ALERTS_FOR_STATE{alertname="…"}[lookback])` at `ts`, matched by labels.
   * Runs before `merge(found)`, so no reader of the active set ever sees a restorable alert as
   * newly pending while the query is in flight; it applies to `found` and to pending alerts
   * already active (kept across a config reload).
   */
  async restore(ds: Datasource, ts: number, lookbackMs: number, found: ReadonlyMap<string, Alert>, signal?: AbortSignal): Promise<number> {
    this.restored = true;
    if (this.config.forMs <= 0 || (this.active.size === 0 && found.size === 0)) return 0;
    const expr = `last_over_time(${ALERT_FOR_STATE_METRIC}{alertname=${JSON.stringify(this.config.name)}}[${Math.max(1, Math.round(lookbackMs / 1000))}s])`;
    const res = await ds.query(expr, ts, signal);
    let n = 0;
    for (const s of res) {
      const key = labelsKey(s.labels.filter((l) => l.name !== METRIC_NAME_LABEL));
      const cur = this.active.get(key);
      const a = cur !== undefined && cur.state !== "inactive" ? cur : found.get(key);
      if (a === undefined || a.state !== "pending" || !Number.isFinite(s.value)) continue;
      const at = s.value * 1000;
      if (at < a.activeAt) {
        a.activeAt = at;
        a.restored = true;
        n++;
      }
    }
    return n;
  }

  /**
   * Alerts to send at `ts` (Prometheus' sendAlerts): firing alerts every `resendDelay`, resolved
   * ones once; each valid for four intervals so a missed evaluation does not resolve it.
   */
  alertsToSend(ts: number, resendDelayMs: number, intervalMs: number, externalLabels: Readonly<Record<string, string>>, generatorURL: string): NotifierAlert[] {
    const out: NotifierAlert[] = [];
    for (const a of this.active.values()) {
      if (a.state === "pending") continue;
      const needs = a.resolvedAt > a.lastSentAt || a.lastSentAt + resendDelayMs < ts || a.lastSentAt === 0;
      if (!needs) continue;
      a.lastSentAt = ts;
      a.validUntil = ts + 4 * Math.max(resendDelayMs, intervalMs);
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(externalLabels)) labels[k] = v;
      for (const l of a.labels) labels[l.name] = l.value;
      out.push({
        labels,
        annotations: { ...a.annotations },
        startsAt: new Date(a.firedAt).toISOString(),
        endsAt: new Date(a.resolvedAt !== 0 ? a.resolvedAt : a.validUntil).toISOString(),
        generatorURL,
      });
    }
    return out;
  }
}
