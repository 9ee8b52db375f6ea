import { METRIC_NAME_LABEL, compareStrings, type Label, type Labels, type Logger } from "@strata/core";
import { PromTextParser, STALE_NAN, isOpenMetricsContentType, type RowSink } from "@strata/formats";
import { scrapeOnce } from "./fetch.js";
import type { RemoteWriteFanout, SeriesRef } from "./remote-write.js";
import { hash52, type Target } from "./targets.js";

/**
 * The scrape loop of one target, as Prometheus runs it (scrape/scrape.go): scrapes at a fixed
 * offset within the interval (spread by a hash of the target), parses the exposition, merges
 * target labels (honor_labels / exported_ prefixing), applies metric_relabel_configs and the
 * limits, writes the samples plus up, scrape_duration_seconds, scrape_samples_scraped,
 * scrape_samples_post_metric_relabeling and scrape_series_added, and stale markers for series
 * that disappeared (all of them when a scrape fails or the target goes away).
 *
 * Per series it keeps the prepared remote write labels from the scrape before (keyed by the
 * exposed labels), so a steady target costs one string key and a map lookup per sample.
 */

export type TargetHealth = "up" | "down" | "unknown";

export interface ScrapeLoopDeps {
  readonly fanout: RemoteWriteFanout;
  readonly externalLabels: readonly Label[];
  readonly log: Logger;
  readonly maxScrapeBytes: number;
  /** Called after each scrape with its duration (ms), for /metrics. */
  readonly onScrape?: (durationMs: number, samples: number, ok: boolean) => void;
}

interface CacheEntry {
  /** null: dropped by relabeling or a limit-free drop (kept so the decision is cached too). */
  readonly ref: SeriesRef | null;
  seen: number;
  /** Written by the last successful scrape (so it needs a stale marker when it goes). */
  live: boolean;
}

const AUTO_NAMES = ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"] as const;

export class ScrapeLoop {
  health: TargetHealth = "unknown";
  lastError = "";
  lastScrapeMs = 0;
  lastDurationMs = 0;
  lastSamples = 0;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly autoRefs: (SeriesRef | null)[];
  private scrapeNo = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private autoWritten = false;

  constructor(
    readonly target: Target,
    private readonly d: ScrapeLoopDeps,
  ) {
    this.autoRefs = AUTO_NAMES.map((n) => d.fanout.ref(this.finish([{ name: METRIC_NAME_LABEL, value: n }, ...target.labels])));
  }

  /** Starts scraping at this target's offset within the interval. */
  start(): void {
    const iv = this.target.scrapeIntervalMs;
    const now = Date.now();
    const offset = (hash52(this.target.key) % iv) - (now % iv);
    const first = offset < 0 ? offset + iv : offset;
    this.schedule(now + first);
  }

  private schedule(at: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.scrape(at).finally(() => {
        this.running = undefined;
      });
      const iv = this.target.scrapeIntervalMs;
      let next = at + iv;
      // A slow event loop or a suspended machine: skip missed slots instead of bursting.
      const now = Date.now();
      if (next <= now) next += Math.ceil((now - next + 1) / iv) * iv;
      this.schedule(next);
    }, Math.max(0, at - Date.now()));
  }

  /**
   * Stops the loop. With `stale`, writes stale markers for every series of the target (it went
   * away); without (shutdown), the series are left as they are, as Prometheus does.
   */
  async stop(stale: boolean): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    if (this.running) await this.running;
    if (!stale) return;
    const ts = Date.now();
    const f = this.d.fanout;
    for (const e of this.cache.values()) if (e.ref !== null && e.live) f.add(e.ref, ts, STALE_NAN);
    if (this.autoWritten) for (const r of this.autoRefs) if (r !== null) f.add(r, ts, STALE_NAN);
    f.flush();
    this.cache.clear();
  }

  /** One scrape at the scheduled time `ts` (ms). Exposed for tests and the bench. */
  async scrape(ts: number): Promise<void> {
    const t0 = performance.now();
    const t = this.target;
    let body: Buffer | undefined;
    let contentType = "";
    let error = "";
    try {
      const r = await scrapeOnce(t.job, t.url, t.scrapeTimeoutMs, this.d.maxScrapeBytes, this.abort.signal);
      body = r.body;
      contentType = r.contentType;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (this.stopped) return;
    const f = this.d.fanout;
    const no = ++this.scrapeNo;
    let scraped = 0;
    let post = 0;
    let added = 0;
    if (body !== undefined) {
      try {
        const r = this.ingest(body, contentType, ts, no);
        scraped = r.scraped;
        post = r.post;
        added = r.added;
      } catch (err) {
        f.discard();
        error = err instanceof Error ? err.message : String(err);
        scraped = 0;
      }
    }
    // Series seen last time and not now: stale (all of them when the scrape failed).
    for (const [k, e] of this.cache) {
      if (e.seen === no && error === "") {
        e.live = true;
        continue;
      }
      if (e.ref !== null && e.live) f.add(e.ref, ts, STALE_NAN);
      this.cache.delete(k);
    }
    const durationMs = performance.now() - t0;
    const up = error === "" ? 1 : 0;
    const autoValues = [up, durationMs / 1000, scraped, error === "" ? post : 0, error === "" ? added : 0];
    for (let i = 0; i < this.autoRefs.length; i++) {
      const r = this.autoRefs[i];
      if (r !== null && r !== undefined) f.add(r, ts, autoValues[i]!);
    }
    f.flush();
    this.autoWritten = true;
    this.health = up === 1 ? "up" : "down";
    this.lastError = error;
    this.lastScrapeMs = ts;
    this.lastDurationMs = durationMs;
    this.lastSamples = scraped;
    if (error !== "") this.d.log.debug({ target: t.url, job: t.job.jobName, err: error }, "scrape failed");
    this.d.onScrape?.(durationMs, scraped, error === "");
  }

  private ingest(body: Buffer, contentType: string, ts: number, no: number): { scraped: number; post: number; added: number } {
    const t = this.target;
    const job = t.job;
    const f = this.d.fanout;
    let scraped = 0;
    let post = 0;
    let added = 0;
    let current: CacheEntry | null = null;
    const sink: RowSink = {
      series: (labels: readonly Label[]) => {
        let key = "";
        for (let i = 0; i < labels.length; i++) {
          const l = labels[i]!;
          key += l.name;
          key += "\u0000";
          key += l.value;
          key += "\u0001";
        }
        let e = this.cache.get(key);
        if (e === undefined) {
          e = { ref: this.prepare(labels), seen: 0, live: false };
          this.cache.set(key, e);
          if (e.ref !== null) added++;
        }
        e.seen = no;
        current = e;
      },
      sample: (sampleTs: number, value: number) => {
        scraped++;
        const e = current;
        if (e === null || e.ref === null) return;
        post++;
        if (job.sampleLimit > 0 && post > job.sampleLimit) throw new Error(`sample_limit exceeded: more than ${job.sampleLimit} samples after metric_relabel_configs`);
        f.add(e.ref, job.honorTimestamps ? sampleTs : ts, value);
      },
    };
    const parser = new PromTextParser(sink, { defaultTimestampMs: ts, openMetrics: isOpenMetricsContentType(contentType) });
    parser.write(body);
    parser.end();
    return { scraped, post, added };
  }

  /** Target labels merged into exposed labels, metric relabeling, limits, external labels. */
  private prepare(exposed: readonly Label[]): SeriesRef | null {
    const t = this.target;
    const job = t.job;
    const lb = new Map<string, string>();
    for (const l of exposed) lb.set(l.name, l.value);
    if (job.honorLabels) {
      for (const l of t.labels) if ((lb.get(l.name) ?? "") === "") lb.set(l.name, l.value);
    } else {
      const conflicts: Label[] = [];
      for (const l of t.labels) {
        const v = lb.get(l.name) ?? "";
        if (v !== "") conflicts.push({ name: l.name, value: v });
        lb.set(l.name, l.value);
      }
      for (const c of conflicts) {
        let name = `exported_${c.name}`;
        while ((lb.get(name) ?? "") !== "") name = `exported_${name}`;
        lb.set(name, c.value);
      }
    }
    let labels: Label[] | null = [];
    for (const [name, value] of lb) if (value !== "") labels.push({ name, value });
    labels.sort((a, b) => compareStrings(a.name, b.name));
    if (job.metricRelabel !== null) {
      labels = job.metricRelabel.apply(labels);
      if (labels === null || !labels.some((l) => l.name === METRIC_NAME_LABEL)) return null;
    }
    if (job.labelLimit > 0 && labels.length > job.labelLimit) {
      throw new Error(`label_limit exceeded: a series has ${labels.length} labels, more than ${job.labelLimit}`);
    }
    return this.d.fanout.ref(this.finish(labels));
  }

  /** External labels (where the series lacks them), sorted. */
  private finish(labels: Labels): Label[] {
    const out = [...labels];
    for (const e of this.d.externalLabels) if (!out.some((l) => l.name === e.name)) out.push(e);
    return out.filter((l) => l.value !== "").sort((a, b) => compareStrings(a.name, b.name));
  }
}
