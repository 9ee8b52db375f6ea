import { getLabel, labelValue, type Label, type Logger, type MetricsRegistry } from "@strata/core";
import type { ScrapeConfig, ScrapeFileConfig, TargetGroup } from "./config.js";
import { startDiscovery, type Discoverer } from "./discovery.js";
import { releaseJobAgents } from "./fetch.js";
import type { RemoteWriteFanout } from "./remote-write.js";
import { ScrapeLoop } from "./scrape-loop.js";
import { ownsTarget, resolveTargets, withTargetLabel, type DroppedTarget } from "./targets.js";

/**
 * Runs the scrape loops of a config: discovery per job, targets resolved on each update,
 * loops started for new targets and stopped (with stale markers) for targets that went away.
 * `apply` swaps in a new config: jobs whose config is unchanged keep their running loops.
 */

export interface ManagerOptions {
  readonly fanout: RemoteWriteFanout;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly maxScrapeBytes: number;
  /** DNS servers for dns_sd_configs (-promscrape.dnsServers); the system resolver when empty. */
  readonly dnsServers?: readonly string[];
  readonly membersCount?: number;
  readonly memberNum?: number;
  readonly replicationFactor?: number;
  /**
   * -promscrape.cluster.memberLabel: a target label added to every target this member scrapes
   * (after sharding, which hashes the labels without it), so its series say which agent
   * scraped them; the value is -promscrape.cluster.memberNum as given, as in vmagent.
   */
  readonly memberLabel?: Label;
}

interface Job {
  readonly cfg: ScrapeConfig;
  readonly groups: Map<string, readonly TargetGroup[]>;
  readonly loops: Map<string, ScrapeLoop>;
  dropped: DroppedTarget[];
  discoverers: Discoverer[];
}

export class ScrapeManager {
  private jobs = new Map<string, Job>();
  private externalLabels: readonly Label[] = [];
  private readonly durations;
  private scrapes = 0;
  private scrapeFailures = 0;
  private samples = 0;

  constructor(private readonly o: ManagerOptions) {
    const m = o.metrics;
    this.durations = m.histogram("strata_agent_scrape_duration_seconds", "Duration of scrapes.", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
    m.counter("strata_agent_scrapes_total", "Scrapes done.", () => this.scrapes);
    m.counter("strata_agent_scrapes_failed_total", "Scrapes that failed (up=0).", () => this.scrapeFailures);
    m.counter("strata_agent_scraped_samples_total", "Samples scraped (before metric relabeling).", () => this.samples);
    m.gauge("strata_agent_targets{status=\"up\"}", "Active targets by health of the last scrape.", () => this.count("up"));
    m.gauge("strata_agent_targets{status=\"down\"}", undefined, () => this.count("down"));
    m.gauge("strata_agent_targets{status=\"unknown\"}", undefined, () => this.count("unknown"));
    m.gauge("strata_agent_targets_dropped", "Targets dropped by relabel_configs.", () => [...this.jobs.values()].reduce((a, j) => a + j.dropped.length, 0));
    m.gauge("strata_agent_series_cached", "Series the targets' scrape caches hold (the active series of the last scrapes).", () => this.sumLoops((l) => l.cachedSeries));
    m.gauge("strata_agent_series_cache_bytes", "Bytes of the targets' scrape caches (series keys, encoded labels, columns, hash tables).", () => this.sumLoops((l) => l.cacheBytes));
  }

  private sumLoops(f: (l: ScrapeLoop) => number): number {
    let n = 0;
    for (const j of this.jobs.values()) for (const l of j.loops.values()) n += f(l);
    return n;
  }

  private count(h: string): number {
    let n = 0;
    for (const j of this.jobs.values()) for (const l of j.loops.values()) if (l.health === h) n++;
    return n;
  }

  /** Applies a (new) config. */
  async apply(cfg: ScrapeFileConfig): Promise<void> {
    const externalChanged = JSON.stringify(cfg.externalLabels) !== JSON.stringify(this.externalLabels);
    this.externalLabels = cfg.externalLabels;
    const next = new Map<string, Job>();
    const stopping: Promise<void>[] = [];
    for (const c of cfg.scrapeConfigs) {
      const old = this.jobs.get(c.jobName);
      if (old !== undefined && old.cfg.fingerprint === c.fingerprint && !externalChanged) {
        next.set(c.jobName, old);
        this.jobs.delete(c.jobName);
        continue;
      }
      next.set(c.jobName, { cfg: c, groups: new Map(), loops: old?.loops ?? new Map(), dropped: [], discoverers: [] });
      if (old !== undefined) {
        for (const d of old.discoverers) d.stop();
        this.jobs.delete(c.jobName);
      }
    }
    // Jobs that are gone: their targets go away.
    for (const j of this.jobs.values()) {
      for (const d of j.discoverers) d.stop();
      for (const l of j.loops.values()) {
        this.untrack(l);
        stopping.push(l.stop(true));
      }
      stopping.push(Promise.resolve().then(() => releaseJobAgents(j.cfg)));
    }
    this.jobs = next;
    for (const j of next.values()) {
      if (j.discoverers.length > 0 || j.groups.size > 0) continue;
      j.discoverers = startDiscovery(j.cfg, (source, groups) => this.onGroups(j, source, groups), this.o.log, this.o.dnsServers !== undefined ? { dnsServers: this.o.dnsServers } : {});
    }
    await Promise.all(stopping);
  }

  private onGroups(j: Job, source: string, groups: readonly TargetGroup[]): void {
    if (this.jobs.get(j.cfg.jobName) !== j) return;
    j.groups.set(source, groups);
    const all: TargetGroup[] = [];
    for (const g of j.groups.values()) all.push(...g);
    const resolved = resolveTargets(j.cfg, all);
    j.dropped = resolved.dropped;
    const member = this.o.memberLabel;
    const want = new Map(
      resolved.active
        .filter((t) => ownsTarget(t, this.o.membersCount ?? 1, this.o.memberNum ?? 0, this.o.replicationFactor ?? 1))
        .map((t) => [t.key, member === undefined ? t : withTargetLabel(t, member)]),
    );
    for (const [key, loop] of j.loops) {
      if (want.has(key) && loop.target.job.fingerprint === j.cfg.fingerprint) continue;
      j.loops.delete(key);
      this.untrack(loop);
      void loop.stop(true);
    }
    for (const [key, t] of want) {
      if (j.loops.has(key)) continue;
      const loop = new ScrapeLoop(t, {
        fanout: this.o.fanout,
        externalLabels: this.externalLabels,
        log: this.o.log,
        maxScrapeBytes: this.o.maxScrapeBytes,
        onScrape: (ms, samples, ok) => {
          this.durations.observe(ms / 1000);
          this.scrapes++;
          this.samples += samples;
          if (!ok) this.scrapeFailures++;
        },
      });
      j.loops.set(key, loop);
      this.track(loop);
      loop.start();
    }
  }

  /** Per-target figures in /metrics (removed when the target goes away). */
  private targetMetricNames(loop: ScrapeLoop): [string, string, string] {
    const t = loop.target;
    const l = `job="${labelValue(t.job.jobName)}",instance="${labelValue(getLabel(t.labels, "instance"))}",url="${labelValue(t.url)}"`;
    return [`strata_agent_target_up{${l}}`, `strata_agent_target_scrape_duration_seconds{${l}}`, `strata_agent_target_samples_scraped{${l}}`];
  }

  private track(loop: ScrapeLoop): void {
    const [up, duration, samples] = this.targetMetricNames(loop);
    const m = this.o.metrics;
    m.gauge(up, "1 when the target's last scrape succeeded, 0 when it failed (-1 before the first).", () => (loop.health === "up" ? 1 : loop.health === "down" ? 0 : -1));
    m.gauge(duration, "Duration of the target's last scrape.", () => loop.lastDurationMs / 1000);
    m.gauge(samples, "Samples of the target's last scrape (before metric relabeling).", () => loop.lastSamples);
  }

  private untrack(loop: ScrapeLoop): void {
    for (const n of this.targetMetricNames(loop)) this.o.metrics.unregister(n);
  }

  /** Active targets by job, for /api/v1/targets and /targets. */
  activeTargets(): ScrapeLoop[] {
    const out: ScrapeLoop[] = [];
    for (const j of this.jobs.values()) out.push(...j.loops.values());
    return out;
  }

  droppedTargets(): DroppedTarget[] {
    const out: DroppedTarget[] = [];
    for (const j of this.jobs.values()) out.push(...j.dropped);
    return out;
  }

  /** Stops everything without stale markers (shutdown: the next start goes on with the series). */
  async stop(): Promise<void> {
    const all: Promise<void>[] = [];
    for (const j of this.jobs.values()) {
      for (const d of j.discoverers) d.stop();
      for (const l of j.loops.values()) all.push(l.stop(false));
    }
    await Promise.all(all);
    for (const j of this.jobs.values()) releaseJobAgents(j.cfg);
    this.jobs.clear();
  }
}
