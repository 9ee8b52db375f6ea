import { METRIC_NAME_LABEL, compareStrings, type Label, type Labels, type Logger } from "@strata/core";
import { PromTextParser, STALE_NAN, isOpenMetricsContentType, parseFloatStrict, type RowSink } from "@strata/formats";
import { scrapeOnce } from "./fetch.js";
import type { RemoteWriteFanout, SeriesRef } from "./remote-write.js";
import { encodeLabelsV1 } from "./encode.js";
import { MAX_SHARED, SeriesCache, hashBytes } from "./series-cache.js";
import { hash52, type Target } from "./targets.js";

/**
 * The scrape loop of one target, as Prometheus runs it (scrape/scrape.go): scrapes at a fixed
 * offset within the interval (spread by a hash of the target), parses the exposition, merges
 * target labels (honor_labels / exported_ prefixing), applies metric_relabel_configs and the
 * limits, writes the samples plus up, scrape_duration_seconds, scrape_samples_scraped,
 * scrape_samples_post_metric_relabeling and scrape_series_added, and stale markers for series
 * that disappeared (all of them when a scrape fails or the target goes away).
 *
 * Per series it keeps the encoded remote write labels from the scrape before in the target's
 * SeriesCache arena (no JS object per series), keyed by the bytes of the line's series text, so a
 * steady target costs a hash, a byte comparison and a value parse per line, all on the scrape
 * body itself: nothing is allocated per line.
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

const AUTO_NAMES = ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"] as const;

export class ScrapeLoop {
  health: TargetHealth = "unknown";
  lastError = "";
  lastScrapeMs = 0;
  lastDurationMs = 0;
  lastSamples = 0;
  private readonly cache: SeriesCache;
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
    // The target's labels are in (nearly) every series: the cache stores each as one byte.
    this.cache = new SeriesCache(
      d.fanout.urlCount,
      target.labels.slice(0, MAX_SHARED).map((l) => encodeLabelsV1([l])),
    );
    this.autoRefs = AUTO_NAMES.map((n) => d.fanout.ref(this.finish([{ name: METRIC_NAME_LABEL, value: n }, ...target.labels])));
  }

  /** Series in this target's cache, and the bytes it holds (for /metrics). */
  get cachedSeries(): number {
    return this.cache.size;
  }

  get cacheBytes(): number {
    return this.cache.bytes;
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
      // A scrape still running (slower than the interval) keeps its slot; this one is skipped.
      if (this.running === undefined) {
        this.running = this.scrape(at).finally(() => {
          this.running = undefined;
        });
      }
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
    const cache = this.cache;
    this.cache.forEachLive((id) => f.addCached(cache, id, ts, STALE_NAN));
    if (this.autoWritten) for (const r of this.autoRefs) if (r !== null) f.add(r, ts, STALE_NAN);
    f.flush();
    this.cache.clear();
  }

  /** One scrape at the scheduled time `ts` (ms). Exposed for tests and the bench. */
  async scrape(ts: number): Promise<void> {
    const t0 = performance.now();
    const t = this.target;
    let body: Buffer | undefined;
    let release: (() => void) | undefined;
    let contentType = "";
    let error = "";
    try {
      const r = await scrapeOnce(t.job, t.url, t.scrapeTimeoutMs, this.d.maxScrapeBytes, this.abort.signal);
      body = r.body;
      release = r.release;
      contentType = r.contentType;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (this.stopped) {
      release?.();
      return;
    }
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
      } finally {
        // Nothing keeps a view of the body after ingest: cache keys are copied into its arena.
        release?.();
      }
    }
    // Series seen last time and not now: stale (all of them when the scrape failed).
    const cache = this.cache;
    cache.sweep(no, error === "", (id) => f.addCached(cache, id, ts, STALE_NAN));
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

  /**
   * Parses a scrape body into the batch, on its bytes. A line whose series text (everything
   * before the value) was seen in an earlier scrape takes the fast path: only its value and
   * timestamp are parsed. Other lines (new series, anything unusual) go through the full
   * PromTextParser, whose sink caches the prepared series under the line's series bytes.
   */
  private ingest(body: Buffer, contentType: string, ts: number, no: number): { scraped: number; post: number; added: number } {
    const job = this.target.job;
    const f = this.d.fanout;
    const cache = this.cache;
    const openMetrics = isOpenMetricsContentType(contentType);
    const honorTs = job.honorTimestamps;
    const limit = job.sampleLimit;
    let scraped = 0;
    let post = 0;
    let added = 0;
    let keyStart = 0;
    let keyEnd = 0;
    let keyHash = 0;
    let current = -1;
    const emit = (id: number, sampleTs: number, value: number): void => {
      scraped++;
      if (cache.kept[id] === 0) return;
      post++;
      if (limit > 0 && post > limit) throw new Error(`sample_limit exceeded: more than ${limit} samples after metric_relabel_configs`);
      f.addCached(cache, id, honorTs ? sampleTs : ts, value);
    };
    const sink: RowSink = {
      series: (labels: readonly Label[]) => {
        let id = cache.find(body, keyStart, keyEnd, keyHash);
        if (id < 0) {
          const ref = this.prepare(labels);
          id = cache.add(body, keyStart, keyEnd, keyHash, ref, no);
          if (ref !== null) added++;
        }
        cache.seen[id] = no;
        current = id;
      },
      sample: (sampleTs: number, value: number) => {
        if (current >= 0) emit(current, sampleTs, value);
      },
    };
    const parser = new PromTextParser(sink, { defaultTimestampMs: ts, openMetrics });
    let pos = 0;
    let typeStart = -1;
    let typeEnd = -1;
    const len = body.length;
    while (pos < len) {
      const start = pos;
      // A sample line: its series text is found (and hashed) first, then the newline is
      // looked for only in what follows (the value), in the same pass.
      const split = seriesEnd(body, start, len);
      let nl: number;
      if (split > 0) {
        nl = split;
        while (nl < len && body[nl] !== 0x0a) nl++;
      } else {
        nl = body.indexOf(0x0a, start);
        if (nl < 0) nl = len;
      }
      const end = nl > start && body[nl - 1] === 0x0d ? nl - 1 : nl;
      pos = nl + 1;
      if (start < end && body[start] === 0x23 /* # */) {
        // Comments only matter to the full parser, and of them only TYPE (OpenMetrics `_created`
        // and le/quantile normalization) and EOF: they are fed to it before the next new series.
        if (startsWith(body, start, end, TYPE_PREFIX)) {
          typeStart = start;
          typeEnd = end;
        } else if (startsWith(body, start, end, EOF_PREFIX)) feedLine(parser, body, start, end);
        continue;
      }
      if (split > 0) {
        const h = scanHash;
        const id = cache.find(body, start, split, h);
        if (id >= 0 && valueAndTimestamp(body, split, end, ts, openMetrics)) {
          cache.seen[id] = no;
          emit(id, parsed.ts, parsed.value);
          continue;
        }
        keyStart = start;
        keyEnd = split;
        keyHash = h;
      } else {
        if (start >= end) continue;
        keyStart = start;
        keyEnd = end;
        keyHash = hashBytes(body, start, end);
      }
      current = -1;
      if (typeStart >= 0) {
        feedLine(parser, body, typeStart, typeEnd);
        typeStart = -1;
      }
      feedLine(parser, body, start, end);
    }
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

const TYPE_PREFIX = Buffer.from("# TYPE ");
const EOF_PREFIX = Buffer.from("# EOF");
const NEWLINE = Buffer.from("\n");

function startsWith(buf: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

/** Feeds one line (without its newline) to the full parser. */
function feedLine(parser: PromTextParser, buf: Buffer, start: number, end: number): void {
  parser.write(buf.subarray(start, end));
  parser.write(NEWLINE);
}

/** The FNV-1a hash of the series text seriesEnd() found (set as it scans: one pass per line). */
let scanHash = 0;

/**
 * Where the series text of the sample line starting at `start` ends (the index of the blank
 * before the value), or -1 for comments, blank lines and anything the fast path does not handle;
 * the scan stops at the line's newline (or `end`). Sets scanHash to the hash of buf[start, result).
 */
function seriesEnd(buf: Uint8Array, start: number, end: number): number {
  if (start >= end) return -1;
  const c0 = buf[start]!;
  if (c0 === 0x23 /* # */ || c0 === 0x20 || c0 === 0x09 || c0 === 0x0a || c0 === 0x0d) return -1;
  let h = 0x811c9dc5 | 0;
  let i = start;
  while (i < end) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0x09) {
      scanHash = h;
      return i;
    }
    if (c === 0x0a) return -1;
    h = Math.imul(h ^ c, 0x01000193);
    i++;
    if (c === 0x7b /* { */) break;
  }
  if (i >= end) return -1;
  // A label set: find its closing brace outside quotes.
  let quoted = false;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x0a) return -1;
    h = Math.imul(h ^ c, 0x01000193);
    if (quoted) {
      if (c === 0x5c /* backslash */) {
        i++;
        if (i < end && buf[i] === 0x0a) return -1;
        if (i < end) h = Math.imul(h ^ buf[i]!, 0x01000193);
      } else if (c === 0x22) quoted = false;
    } else if (c === 0x22 /* " */) quoted = true;
    else if (c === 0x7d /* } */) {
      const next = i + 1 < end ? buf[i + 1]! : 0;
      if (next !== 0x20 && next !== 0x09) return -1;
      scanHash = h;
      return i + 1;
    }
  }
  return -1;
}

/** Where valueAndTimestamp puts its result (one per process: the parse is synchronous). */
const parsed = { value: 0, ts: 0 };

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Parses the value and optional timestamp of buf[from, end) into `parsed`; false when the
 * line is unusual (the full parser then takes it and reports what is wrong).
 */
function valueAndTimestamp(buf: Buffer, from: number, end: number, defaultTs: number, openMetrics: boolean): boolean {
  let i = from;
  while (i < end && isBlank(buf[i]!)) i++;
  const vs = i;
  while (i < end && !isBlank(buf[i]!)) i++;
  let value = parseDecimal(buf, vs, i);
  if (value === undefined) {
    value = parseFloatStrict(buf.toString("latin1", vs, i));
    if (value === undefined) return false;
  }
  while (i < end && isBlank(buf[i]!)) i++;
  parsed.value = value;
  parsed.ts = defaultTs;
  if (i >= end || buf[i] === 0x23 /* exemplar */) return true;
  const tsStart = i;
  while (i < end && !isBlank(buf[i]!)) i++;
  let ts: number | undefined;
  if (openMetrics) {
    const sec = parseDecimal(buf, tsStart, i) ?? parseFloatStrict(buf.toString("latin1", tsStart, i));
    if (sec === undefined || !Number.isFinite(sec)) return false;
    ts = Math.round(sec * 1000);
  } else ts = parseInteger(buf, tsStart, i);
  if (ts === undefined || !Number.isSafeInteger(ts)) return false;
  while (i < end && isBlank(buf[i]!)) i++;
  if (i < end && buf[i] !== 0x23) return false;
  parsed.ts = ts;
  return true;
}

/** buf[start, end) as `[+-]digits`, or undefined. */
function parseInteger(buf: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  let neg = false;
  if (buf[i] === 0x2d || buf[i] === 0x2b) {
    neg = buf[i] === 0x2d;
    i++;
  }
  if (i >= end) return undefined;
  let v = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return neg ? -v : v;
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/**
 * buf[start, end) as a plain decimal (`-12.5`, `3e-7`) without making a string, or undefined
 * for anything else (then parseFloatStrict decides). Exact: at most 15 significant digits and a
 * power of ten up to 22, where one multiplication or division by an exact power of ten rounds
 * correctly (Clinger's fast path), as Number() does.
 */
export function parseDecimal(buf: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  let neg = false;
  const c0 = buf[i];
  if (c0 === 0x2d /* - */ || c0 === 0x2b /* + */) {
    neg = c0 === 0x2d;
    i++;
  }
  let mant = 0;
  let digits = 0;
  let scale = 0;
  let any = false;
  while (i < end) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    if (digits > 0 || d !== 0) digits++;
    mant = mant * 10 + d;
    any = true;
    i++;
  }
  if (i < end && buf[i] === 0x2e /* . */) {
    i++;
    while (i < end) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) break;
      if (digits > 0 || d !== 0) digits++;
      mant = mant * 10 + d;
      scale--;
      any = true;
      i++;
    }
  }
  if (!any || digits > 15) return undefined;
  if (i < end && (buf[i]! | 0x20) === 0x65 /* e */) {
    i++;
    let eneg = false;
    const s = buf[i];
    if (s === 0x2d || s === 0x2b) {
      eneg = s === 0x2d;
      i++;
    }
    let e = 0;
    let edigits = 0;
    while (i < end) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) break;
      e = e * 10 + d;
      edigits++;
      i++;
      if (edigits > 4) return undefined;
    }
    if (edigits === 0) return undefined;
    scale += eneg ? -e : e;
  }
  if (i !== end) return undefined;
  let v: number;
  if (scale === 0) v = mant;
  else if (scale > 0 && scale <= 22) v = mant * POW10[scale]!;
  else if (scale < 0 && scale >= -22) v = mant / POW10[-scale]!;
  else if (mant === 0) v = 0;
  else return undefined;
  return neg ? -v : v;
}
