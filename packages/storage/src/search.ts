import { InternalError } from "@strata/core";
import { inlinePayloads, type BlockHeader, type RawBlock } from "./block.js";
import { PartSearchHint, type Part } from "./part.js";
import { ReadScratch } from "./search-read.js";
import { encodeTSID, TSID_SIZE, type TSID } from "./tsid.js";

export interface SearchOptions {
  /** Fail with ExecutionError (STRATA_LIMIT_EXCEEDED) when more series match. */
  maxSeries?: number;
  /**
   * Block payloads (`timestamps`, `values`) are views of memory the cursor reuses: they are
   * valid only until the next `next()` or `close()`. For callers that copy or decode each
   * series before moving on; saves a copy per block.
   */
  reuseBlockBuffers?: boolean;
  /**
   * Blocks are read up to maxT plus this long (at least the storage's own dedup interval): a
   * reader deduplicating with a longer interval needs its whole last interval. Series are found
   * (and counted against maxSeries) by [minT, maxT] alone.
   */
  readPastMs?: number;
}

/** One series found by `search`: its name and its blocks as stored (compressed). */
export interface SearchedSeries {
  readonly tsid: TSID;
  /** Canonical metric-name bytes (decodeMetricName from @strata/core). */
  readonly metricName: Uint8Array;
  /**
   * Blocks overlapping the searched range (they may hold samples outside it, and may overlap
   * each other when they come from different parts): decode with `mergeSeriesBlocks(blocks,
   * cursor.minT, cursor.maxT, dedupIntervalMs)`.
   */
  readonly blocks: readonly RawBlock[];
}

/**
 * Cursor over search results, in TSID order: `while (c.next()) use(c.at())`; `close()` when
 * stopping early (it is closed automatically at the end). The cursor holds references on the
 * parts it reads, so merges and retention never pull data from under it. Not for concurrent use.
 */
export interface SeriesCursor {
  /** Effective range: the requested one, with minT clamped to the retention. */
  readonly minT: number;
  readonly maxT: number;
  /** Number of series the index matched (some may turn out to have no blocks in range). */
  readonly seriesMatched: number;
  next(): boolean;
  at(): SearchedSeries;
  close(): void;
}

/** What a cursor needs from its store: series names, and a place to count what it read. */
export interface CursorSource {
  metricNameOf(metricID: number): Uint8Array | undefined;
  countSearched(series: number, blocks: number, fileReads: number, readBuffers: number): void;
}

/** The search cursor: walks TSIDs, collecting each one's blocks from every part. */
export class StorageCursor implements SeriesCursor {
  private i = -1;
  private current: SearchedSeries | undefined;
  private released = false;
  private readonly headers: BlockHeader[] = [];
  private scratch: ReadScratch | undefined;
  private readonly reuse: boolean;
  /** The current TSID's bytes. */
  private readonly key = new Uint8Array(TSID_SIZE);
  /** Where the previous TSID's lookup began in each part (TSIDs come in ascending order). */
  private readonly hints: PartSearchHint[];

  /** `parts` are acquired by the caller; the cursor releases them when it closes. */
  constructor(
    private readonly source: CursorSource,
    private readonly tsids: readonly TSID[],
    private readonly parts: Part[],
    readonly minT: number,
    readonly maxT: number,
    private readonly fetchMaxT: number,
    reuseBuffers = false,
  ) {
    this.reuse = reuseBuffers;
    this.hints = parts.map(() => new PartSearchHint());
    this.scratch = scratches.pop() ?? new ReadScratch();
    if (tsids.length === 0) this.close();
  }

  get seriesMatched(): number {
    return this.tsids.length;
  }

  next(): boolean {
    if (this.released) return false;
    try {
      for (;;) {
        this.i++;
        if (this.i >= this.tsids.length) {
          this.close();
          return false;
        }
        const tsid = this.tsids[this.i]!;
        const key = this.key;
        encodeTSID(tsid, key, 0);
        const blocks: RawBlock[] = [];
        const scratch = this.scratch!;
        scratch.nextStep();
        const reads = scratch.reads;
        const buffers = scratch.buffers;
        for (let p = 0; p < this.parts.length; p++) {
          const part = this.parts[p]!;
          this.headers.length = 0;
          part.findBlocks(key, this.minT, this.fetchMaxT, this.headers, this.hints[p]);
          for (const h of this.headers) {
            const inline = h.inline ? inlinePayloads(h) : undefined;
            blocks.push({
              tsid,
              count: h.count,
              minT: h.minT,
              maxT: h.maxT,
              tsTag: h.tsTag,
              valTag: h.valTag,
              timestamps: inline?.timestamps ?? (this.reuse ? part.readTimestamps(h, scratch) : part.readTimestamps(h, scratch).slice()),
              values: inline?.values ?? (this.reuse ? part.readValues(h, scratch) : part.readValues(h, scratch).slice()),
            });
          }
        }
        if (blocks.length === 0) continue;
        const metricName = this.source.metricNameOf(tsid.metricID);
        if (metricName === undefined) continue;
        this.source.countSearched(1, blocks.length, scratch.reads - reads, scratch.buffers - buffers);
        this.current = { tsid, metricName, blocks };
        return true;
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  at(): SearchedSeries {
    if (this.current === undefined) throw new InternalError("SeriesCursor.at() before a successful next()");
    return this.current;
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.parts) p.release();
    this.parts.length = 0;
    if (this.scratch !== undefined) {
      this.scratch.clear();
      if (scratches.length < MAX_POOLED_SCRATCHES) scratches.push(this.scratch);
    }
    this.scratch = undefined;
  }
}

/** Read-ahead of closed cursors (their window buffers dropped), for the next searches. */
const scratches: ReadScratch[] = [];
const MAX_POOLED_SCRATCHES = 8;
