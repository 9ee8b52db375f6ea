import { AlertingRule, type Alert } from "./alerting.js";
import { formatFloat } from "./template/gofmt.js";
import { Group, type GroupOptions } from "./group.js";
import type { GroupConfig } from "./rulefile.js";

/**
 * The running rule groups: started on load, replaced on reload (a group with the same file and
 * name keeps its alerts), stopped on shutdown; and their state in the JSON shapes of
 * Prometheus' /api/v1/rules and /api/v1/alerts.
 */

const groupKey = (c: { file: string; name: string }): string => `${c.file}\u0000${c.name}`;

const GO_ZERO_TIME = "0001-01-01T00:00:00Z";
const rfc3339 = (ms: number): string => (ms === 0 ? GO_ZERO_TIME : new Date(ms).toISOString());

export interface AlertJson {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  keepFiringSince?: string;
  value: string;
}

function alertJson(a: Alert): AlertJson {
  const labels: Record<string, string> = {};
  for (const l of a.labels) labels[l.name] = l.value;
  return {
    labels,
    annotations: { ...a.annotations },
    state: a.state as "pending" | "firing",
    activeAt: rfc3339(a.activeAt),
    ...(a.keepFiringSince !== 0 ? { keepFiringSince: rfc3339(a.keepFiringSince) } : {}),
    value: formatFloat(a.value, "e", -1),
  };
}

export interface RulesFilter {
  readonly type?: "alert" | "record";
  readonly ruleNames?: readonly string[];
  readonly groupNames?: readonly string[];
  readonly files?: readonly string[];
  /** Leave alerts out of alerting rules (exclude_alerts=true). */
  readonly excludeAlerts?: boolean;
}

export class RuleManager {
  private groups: Group[] = [];
  private started = false;

  constructor(private readonly opts: GroupOptions) {}

  get list(): readonly Group[] {
    return this.groups;
  }

  /** Replaces the groups (all at once; the caller validated the configs). */
  async update(configs: readonly GroupConfig[]): Promise<void> {
    const old = new Map(this.groups.map((g) => [groupKey(g.config), g]));
    const next = configs.map((c) => {
      const g = new Group(c, this.opts);
      const prev = old.get(groupKey(c));
      if (prev !== undefined) g.adoptStateFrom(prev);
      return g;
    });
    await Promise.all(this.groups.map((g) => g.stop()));
    this.groups = next;
    if (this.started) for (const g of next) g.start();
  }

  start(): void {
    this.started = true;
    for (const g of this.groups) g.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all(this.groups.map((g) => g.stop()));
  }

  activeAlerts(): AlertJson[] {
    const out: AlertJson[] = [];
    for (const g of this.groups) {
      for (const r of g.rules) {
        if (!(r instanceof AlertingRule)) continue;
        for (const a of r.active.values()) if (a.state !== "inactive") out.push(alertJson(a));
      }
    }
    return out;
  }

  rules(filter: RulesFilter = {}): unknown[] {
    const groups: unknown[] = [];
    for (const g of this.groups) {
      if (filter.groupNames?.length && !filter.groupNames.includes(g.name)) continue;
      if (filter.files?.length && !filter.files.includes(g.file)) continue;
      const rules: unknown[] = [];
      for (const r of g.rules) {
        if (filter.ruleNames?.length && !filter.ruleNames.includes(r.name)) continue;
        const common = {
          name: r.name,
          query: r.config.expr,
          health: r.health,
          ...(r.lastError !== "" ? { lastError: r.lastError } : {}),
          evaluationTime: r.evaluationMs / 1000,
          lastEvaluation: rfc3339(r.lastEvaluation),
        };
        if (r instanceof AlertingRule) {
          if (filter.type === "record") continue;
          const alerts = [...r.active.values()].filter((a) => a.state !== "inactive");
          const state = alerts.some((a) => a.state === "firing") ? "firing" : alerts.length > 0 ? "pending" : "inactive";
          const labels: Record<string, string> = {};
          for (const [k, t] of Object.entries(r.config.labels)) labels[k] = t.text;
          const annotations: Record<string, string> = {};
          for (const [k, t] of Object.entries(r.config.annotations)) annotations[k] = t.text;
          rules.push({
            state,
            ...common,
            duration: r.config.forMs / 1000,
            keepFiringFor: r.config.keepFiringForMs / 1000,
            labels,
            annotations,
            ...(filter.excludeAlerts ? {} : { alerts: alerts.map(alertJson) }),
            type: "alerting",
          });
        } else {
          if (filter.type === "alert") continue;
          rules.push({ ...common, labels: { ...r.config.labels }, type: "recording" });
        }
      }
      if (rules.length === 0 && (filter.ruleNames?.length || filter.type)) continue;
      groups.push({
        name: g.name,
        file: g.file,
        rules,
        interval: g.intervalMs / 1000,
        limit: g.config.limit,
        evaluationTime: g.evaluationMs / 1000,
        lastEvaluation: rfc3339(g.lastEvaluation),
      });
    }
    return groups;
  }
}
