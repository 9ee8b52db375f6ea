import { createHash } from "node:crypto";
import { compareStrings, formatDuration, parseDuration, type Label } from "@strata/core";
import type { ScrapeConfig, TargetGroup } from "./config.js";

/**
 * Target labels as Prometheus computes them (scrape/target.go PopulateLabels): discovered labels
 * plus job, __address__, __scheme__, __metrics_path__, __scrape_interval__, __scrape_timeout__
 * and __param_<name>, then relabel_configs; labels starting with `__` are then removed and
 * `instance` defaults to `__address__`.
 */

export interface Target {
  /** Stable identity: the job plus the final labels and the scrape URL. */
  readonly key: string;
  readonly job: ScrapeConfig;
  readonly url: string;
  /** Final target labels, sorted (job, instance, …). */
  readonly labels: readonly Label[];
  /** Labels before relabeling (what service discovery found). */
  readonly discoveredLabels: readonly Label[];
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
}

export interface DroppedTarget {
  readonly job: string;
  readonly discoveredLabels: readonly Label[];
  readonly reason: string;
}

export interface ResolvedTargets {
  readonly active: Target[];
  readonly dropped: DroppedTarget[];
}

/** Resolves discovered groups of one job into targets (and the ones relabeling dropped). */
export function resolveTargets(job: ScrapeConfig, groups: readonly TargetGroup[], out: ResolvedTargets = { active: [], dropped: [] }): ResolvedTargets {
  const seen = new Set(out.active.map((t) => t.key));
  for (const g of groups) {
    for (const addr of g.targets) {
      const lb = new Map<string, string>();
      for (const l of g.labels) lb.set(l.name, l.value);
      lb.set("__address__", addr);
      const setDefault = (k: string, v: string): void => {
        if (!lb.has(k)) lb.set(k, v);
      };
      setDefault("job", job.jobName);
      setDefault("__scheme__", job.scheme);
      setDefault("__metrics_path__", job.metricsPath);
      setDefault("__scrape_interval__", formatDuration(job.scrapeIntervalMs));
      setDefault("__scrape_timeout__", formatDuration(job.scrapeTimeoutMs));
      for (const [k, vs] of job.params) if (vs.length > 0) setDefault(`__param_${k}`, vs[0]!);
      const discovered = sorted(lb);
      const relabeled = job.relabel.apply(discovered);
      if (relabeled === null) {
        out.dropped.push({ job: job.jobName, discoveredLabels: discovered, reason: "dropped by relabel_configs" });
        continue;
      }
      const get = (k: string): string | undefined => relabeled.find((l) => l.name === k)?.value;
      const address = get("__address__");
      if (address === undefined || address === "") {
        out.dropped.push({ job: job.jobName, discoveredLabels: discovered, reason: "no __address__ after relabeling" });
        continue;
      }
      const intervalMs = durationLabel(get("__scrape_interval__"), job.scrapeIntervalMs);
      const timeoutMs = Math.min(durationLabel(get("__scrape_timeout__"), job.scrapeTimeoutMs), intervalMs);
      const params = new URLSearchParams();
      for (const [k, vs] of job.params) {
        const override = get(`__param_${k}`);
        if (override !== undefined) params.append(k, override);
        else for (const v of vs) params.append(k, v);
      }
      for (const l of relabeled) {
        if (l.name.startsWith("__param_") && !job.params.has(l.name.slice(8))) params.append(l.name.slice(8), l.value);
      }
      const scheme = get("__scheme__") ?? job.scheme;
      const path = get("__metrics_path__") ?? job.metricsPath;
      const qs = params.toString();
      const url = `${scheme}://${address}${path}${qs === "" ? "" : (path.includes("?") ? "&" : "?") + qs}`;
      const final: Label[] = [];
      let hasInstance = false;
      for (const l of relabeled) {
        if (l.name.startsWith("__")) continue;
        if (l.name === "instance") hasInstance = true;
        final.push(l);
      }
      if (!hasInstance) final.push({ name: "instance", value: address });
      final.sort((a, b) => compareStrings(a.name, b.name));
      const key = `${job.jobName}\u0000${url}\u0000${final.map((l) => `${l.name}=${l.value}`).join("\u0000")}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.active.push({ key, job, url, labels: final, discoveredLabels: discovered, scrapeIntervalMs: intervalMs, scrapeTimeoutMs: timeoutMs });
    }
  }
  return out;
}

function durationLabel(v: string | undefined, def: number): number {
  if (v === undefined) return def;
  try {
    const ms = parseDuration(v);
    return ms > 0 ? ms : def;
  } catch {
    return def;
  }
}

function sorted(lb: Map<string, string>): Label[] {
  const out: Label[] = [];
  for (const [name, value] of lb) out.push({ name, value });
  out.sort((a, b) => compareStrings(a.name, b.name));
  return out;
}

/** A 64-bit hash of a string as a non-negative number below 2^52 (scrape offsets, sharding). */
export function hash52(s: string): number {
  const d = createHash("sha256").update(s).digest();
  return d.readUIntBE(0, 6) * 16 + (d[6]! >>> 4);
}

/** The target with label `l` set (replacing one of the same name), labels kept sorted. */
export function withTargetLabel(t: Target, l: Label): Target {
  const labels = [...t.labels.filter((x) => x.name !== l.name), l].sort((a, b) => compareStrings(a.name, b.name));
  return { ...t, labels };
}

/**
 * vmagent's -promscrape.cluster sharding: a target belongs to member `memberNum` of
 * `membersCount` when the hash of its labels lands there (with replication, the next ones too).
 */
export function ownsTarget(t: Target, membersCount: number, memberNum: number, replicationFactor = 1): boolean {
  if (membersCount <= 1) return true;
  const h = hash52(t.key) % membersCount;
  for (let i = 0; i < Math.min(replicationFactor, membersCount); i++) {
    if ((h + i) % membersCount === memberNum) return true;
  }
  return false;
}
