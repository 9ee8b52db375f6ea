import * as fs from "node:fs";
import * as path from "node:path";
import { BadDataError, type CacheStats, errorMessage, InternalError, UnavailableError } from "@strata/core";
import { BlockBuilder, type Block } from "./block.js";
import { compareBytes, compareRange } from "../bytes.js";
import { BloomKeys } from "./bloom.js";
import { DEFAULT_BLOCK_SIZE, PARTS_JSON_VERSION, MAX_ITEM_SIZE, PARTS_DIR, PARTS_JSON, TMP_DIR, codecFor } from "./constants.js";
import { Cursor, MergeIterator } from "./cursor.js";
import { fsyncDir, writeFileAtomic } from "../fsutil.js";
import { type BlockCache, newBlockCache, FilePart, InMemoryPart, type KindSizes, type Part, PartWriter } from "./part.js";
import { defaultLog } from "../log.js";
import { MAX_PENDING_ITEMS, PendingItems } from "./pending.js";

export interface TableOptions {
  /** Raw item bytes per block (default 16 KiB). */
  readonly blockSize?: number;
  /** Pending (unsorted) items that are turned into a searchable in-memory part (default 65536, at most 131072). */
  readonly maxPendingItems?: number;
  /**
   * In-memory parts beyond which the smallest are merged together (default 16: a flush every few
   * seconds merges them all anyway; at 8, creating a million series merged most items in memory
   * once before the flush merged them again).
   */
  readonly maxInMemoryParts?: number;
  /** In-memory bytes beyond which a flush to disk starts in the background (default 64 MiB). */
  readonly maxInMemoryBytes?: number;
  /** Periodic flush to disk; 0 disables (default 5000 ms). */
  readonly flushIntervalMs?: number;
  /** Most parts merged at once (default 16). */
  readonly mergeFanIn?: number;
  /** Cap of the decoded-block cache (default 64 MiB). */
  readonly blockCacheBytes?: number;
  /** Items (buf[start, end)) for which this returns false are dropped when parts are written (flush, merge). */
  readonly keepItem?: (buf: Uint8Array, start: number, end: number) => boolean;
  /**
   * Items starting with this byte carry an 8-byte uniformly distributed key right after it;
   * parts keep a bloom filter of those keys for Snapshot.keyedCursor (default: none).
   */
  readonly bloomNamespace?: number;
  /** Called after pending items became visible to snapshots that exclude pending items. */
  readonly onPendingConverted?: () => void;
  /** Background merge/flush failures (default: logged as JSON through pino). */
  readonly onError?: (err: unknown) => void;
}

interface PartsJson {
  readonly formatVersion: number;
  readonly parts: readonly string[];
}

/** A consistent, refcounted view of a table's parts. Release it when done. */
export class Snapshot {
  private refs = 1;

  constructor(
    readonly parts: readonly Part[],
    private readonly unref: (p: Part) => void,
  ) {
    for (const p of parts) p.refs++;
  }

  acquire(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) for (const p of this.parts) this.unref(p);
  }

  /** `sparse`: for lookups of a few items in each of many blocks (see Cursor). */
  cursor(sparse = false): Cursor {
    return new Cursor(this.parts, sparse);
  }

  private shared: Cursor | undefined;

  /** The greatest item < key over all parts (a copy), or undefined. */
  lastBefore(key: Uint8Array): Uint8Array | undefined {
    let best: Uint8Array | undefined;
    for (const p of this.parts) {
      // last block whose first item < key, then the last item < key inside it
      let lo = 0;
      let hi = p.blocksCount - 1;
      if (hi < 0 || compareBytes(p.firstItem(0), key) >= 0) continue;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (compareBytes(p.firstItem(mid), key) < 0) lo = mid;
        else hi = mid - 1;
      }
      const b = p.block(lo);
      let i = b.n - 1;
      while (i > 0 && compareRange(b.data, b.offs[i]!, b.offs[i + 1]!, key, 0, key.length) >= 0) i--;
      const it = b.data.subarray(b.offs[i]!, b.offs[i + 1]!);
      if (best === undefined || compareBytes(it, best) > 0) best = it.slice();
    }
    return best;
  }

  /**
   * A cursor over only the parts whose bloom filter may hold the key (h1, h2) — the two
   * big-endian u32 halves of the 8 bytes after the namespace byte; undefined when none may.
   */
  keyedCursor(h1: number, h2: number): Cursor | undefined {
    let sel: Part[] | undefined;
    for (const p of this.parts) {
      if (p.mayContainKey(h1, h2)) (sel ??= []).push(p);
    }
    return sel === undefined ? undefined : new Cursor(sel);
  }

  /**
   * One cursor reused by every caller of this snapshot: for short synchronous lookups that do
   * not nest (saves allocating a cursor per part per lookup on hot paths).
   */
  sharedCursor(): Cursor {
    return (this.shared ??= new Cursor(this.parts));
  }

  get itemsCount(): number {
    let n = 0;
    for (const p of this.parts) n += p.itemsCount;
    return n;
  }
}

const partName = (seq: number): string => seq.toString(16).toUpperCase().padStart(16, "0");

/**
 * A log-structured store of sorted, unique byte items (VictoriaMetrics lib/mergeset): items go
 * to a pending buffer, become searchable in-memory parts, are flushed to immutable on-disk parts
 * (listed atomically in parts.json) and merged in the background with bounded fan-in.
 *
 * Single-threaded contract: every method runs on the event loop; a Snapshot taken between two
 * awaits stays valid (parts are refcounted) until released.
 */
export class Table {
  private readonly pending = new PendingItems();
  private memParts: InMemoryPart[] = [];
  private fileParts: FilePart[] = [];
  private current: Snapshot | undefined;
  private flushChain: Promise<void> = Promise.resolve();
  private forceChain: Promise<void> = Promise.resolve();
  private mergeRunning: Promise<void> | undefined;
  private bgFlush: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly cache: BlockCache;
  private readonly blockSize: number;
  private readonly maxPendingItems: number;
  private readonly maxInMemoryParts: number;
  private readonly maxInMemoryBytes: number;
  private readonly fanIn: number;
  private readonly keepItem: ((buf: Uint8Array, start: number, end: number) => boolean) | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly stats = {
    itemsAdded: 0,
    flushes: 0,
    merges: 0,
    mergedItems: 0,
    inMemoryMerges: 0,
    errors: 0,
    droppedItems: 0,
  };

  private constructor(
    readonly dir: string,
    private nextSeq: number,
    private readonly opts: TableOptions,
  ) {
    this.cache = newBlockCache(opts.blockCacheBytes ?? 64 << 20);
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.maxPendingItems = Math.min(MAX_PENDING_ITEMS, opts.maxPendingItems ?? 65536);
    this.maxInMemoryParts = Math.max(2, opts.maxInMemoryParts ?? 16);
    this.maxInMemoryBytes = opts.maxInMemoryBytes ?? 64 << 20;
    this.fanIn = Math.max(2, opts.mergeFanIn ?? 16);
    this.keepItem = opts.keepItem;
    this.onError = opts.onError ?? ((err) => defaultLog("strata-mergeset").error({ err: errorMessage(err) }, "mergeset background merge/flush failed"));
  }

  /** Opens (or creates) a table; removes leftovers of interrupted flushes and merges. */
  static async open(dir: string, opts: TableOptions = {}): Promise<Table> {
    const partsDir = path.join(dir, PARTS_DIR);
    fs.mkdirSync(partsDir, { recursive: true });
    fs.rmSync(path.join(dir, TMP_DIR), { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, TMP_DIR));
    const pj = path.join(dir, PARTS_JSON);
    let listed: string[] = [];
    if (fs.existsSync(pj)) {
      let parsed: PartsJson;
      try {
        parsed = JSON.parse(fs.readFileSync(pj, "utf8")) as PartsJson;
      } catch (err) {
        throw new InternalError(`mergeset ${pj}: ${String(err)}`, "STRATA_CORRUPT_DATA");
      }
      if (parsed.formatVersion !== PARTS_JSON_VERSION || !Array.isArray(parsed.parts)) {
        throw new InternalError(`mergeset ${pj}: unknown format`, "STRATA_CORRUPT_DATA");
      }
      listed = [...parsed.parts];
    }
    const listedSet = new Set(listed);
    let maxSeq = 0;
    for (const name of fs.readdirSync(partsDir)) {
      if (!listedSet.has(name)) {
        fs.rmSync(path.join(partsDir, name), { recursive: true, force: true });
      }
    }
    const t = new Table(dir, 0, opts);
    try {
      for (const name of listed) {
        if (!/^[0-9A-F]{16}$/.test(name)) throw new InternalError(`mergeset ${pj}: bad part name ${name}`, "STRATA_CORRUPT_DATA");
        maxSeq = Math.max(maxSeq, parseInt(name, 16));
        t.fileParts.push(FilePart.open(path.join(partsDir, name), t.cache));
      }
    } catch (err) {
      for (const p of t.fileParts) p.close();
      throw err;
    }
    t.nextSeq = maxSeq + 1;
    if (!fs.existsSync(pj)) t.writePartsJson();
    fsyncDir(partsDir);
    const every = opts.flushIntervalMs ?? 5000;
    if (every > 0) {
      t.timer = setInterval(() => {
        if (t.pending.count > 0 || t.memParts.length > 0) t.flush().catch(t.onError);
      }, every);
      t.timer.unref();
    }
    return t;
  }

  /** Adds an item (copied). */
  add(item: Uint8Array): void {
    this.addRange(item, 0, item.length);
  }

  /** Adds the item b[start, end) (copied). */
  addRange(b: Uint8Array, start: number, end: number): void {
    if (this.closed) throw new UnavailableError(`mergeset table ${this.dir} is closed`, "STRATA_CLOSED");
    if (end - start > MAX_ITEM_SIZE) {
      throw new BadDataError(`mergeset item of ${end - start} bytes exceeds ${MAX_ITEM_SIZE}`, "STRATA_LABEL_TOO_LONG");
    }
    this.pending.add(b, start, end);
    this.stats.itemsAdded++;
    if (this.pending.count >= this.maxPendingItems) this.convertPending();
  }

  get pendingItems(): number {
    return this.pending.count;
  }

  /**
   * A consistent view. With `includePending` (default) items added so far are visible; without,
   * only items that were already converted (see onPendingConverted).
   */
  snapshot(includePending = true): Snapshot {
    if (includePending && this.pending.count > 0) this.convertPending();
    if (this.current === undefined) {
      this.current = new Snapshot([...this.memParts, ...this.fileParts], (p) => this.unrefPart(p));
    }
    return this.current.acquire();
  }

  private invalidate(): void {
    const c = this.current;
    this.current = undefined;
    c?.release();
  }

  private unrefPart(p: Part): void {
    if (--p.refs > 0) return;
    p.close();
    if (p instanceof FilePart && p.obsolete) {
      fs.rmSync(p.dir, { recursive: true, force: true });
    }
  }

  private retire(p: Part): void {
    p.obsolete = true;
    this.unrefPart(p);
  }

  private convertPending(): void {
    if (this.pending.count === 0) return;
    this.memParts.push(this.pending.toPart(this.blockSize, this.opts.bloomNamespace));
    this.invalidate();
    if (this.idleInMemoryParts() > this.maxInMemoryParts) this.mergeInMemory();
    this.opts.onPendingConverted?.();
    if (this.inMemoryBytes() > this.maxInMemoryBytes && this.bgFlush === undefined) {
      this.bgFlush = this.flush()
        .catch((err: unknown) => this.fail(err))
        .finally(() => (this.bgFlush = undefined));
    }
  }

  private inMemoryBytes(): number {
    let n = this.pending.sizeBytes;
    for (const p of this.memParts) n += p.sizeBytes;
    return n;
  }

  /**
   * In-memory parts that no flush is writing. Only these count against maxInMemoryParts: while
   * a flush writes its parts (a second or more at a million new series), counting them made
   * every conversion merge the new part into the one before, the same items again and again.
   */
  private idleInMemoryParts(): number {
    let n = 0;
    for (const p of this.memParts) if (!p.busy) n++;
    return n;
  }

  /** Merges the smaller half of the idle in-memory parts into one (synchronously). */
  private mergeInMemory(): void {
    const idle = this.memParts.filter((p) => !p.busy).sort((a, b) => a.itemsCount - b.itemsCount);
    const sel = idle.slice(0, Math.max(2, idle.length - (this.maxInMemoryParts >>> 1)));
    if (sel.length < 2) return;
    const it = new MergeIterator(sel);
    const bb = new BlockBuilder();
    const blocks: Block[] = [];
    const ns = this.opts.bloomNamespace;
    const bk = ns === undefined ? undefined : new BloomKeys(ns);
    while (it.next()) {
      bk?.addItem(it.buf, it.start, it.end);
      bb.add(it.buf, it.start, it.end);
      if (bb.itemsBytes >= this.blockSize) {
        blocks.push(bb.toBlock());
        bb.reset();
      }
    }
    if (bb.count > 0) blocks.push(bb.toBlock());
    const merged = new InMemoryPart(blocks, bk?.build());
    const selSet = new Set<Part>(sel);
    this.memParts = this.memParts.filter((p) => !selSet.has(p));
    this.memParts.push(merged);
    for (const p of sel) this.retire(p);
    this.invalidate();
    this.stats.inMemoryMerges++;
  }

  private fail(err: unknown): void {
    this.stats.errors++;
    this.onError(err);
  }

  /** Makes every item added before the call durable (on disk, listed in parts.json). */
  flush(): Promise<void> {
    const p = this.flushChain.then(() => this.doFlush());
    this.flushChain = p.catch(() => undefined);
    return p;
  }

  private async doFlush(): Promise<void> {
    if (this.closed && this.pending.count === 0 && this.memParts.length === 0) return;
    this.convertPending();
    const sel = this.memParts.filter((p) => !p.busy);
    if (sel.length === 0) return;
    for (const p of sel) p.busy = true;
    let fp: FilePart | undefined;
    try {
      fp = await this.writePart(sel, true);
    } catch (err) {
      for (const p of sel) p.busy = false;
      throw err;
    }
    const selSet = new Set<Part>(sel);
    this.memParts = this.memParts.filter((p) => !selSet.has(p));
    if (fp !== undefined) this.fileParts.push(fp);
    this.writePartsJson();
    for (const p of sel) this.retire(p);
    this.invalidate();
    this.stats.flushes++;
    this.scheduleMerge();
  }

  /**
   * Writes the merged items of `parts` as a new file part (a flush of in-memory parts when
   * `flush`); undefined when nothing is left.
   */
  private async writePart(parts: readonly Part[], flush: boolean): Promise<FilePart | undefined> {
    const name = partName(this.nextSeq++);
    const tmp = path.join(this.dir, TMP_DIR, name);
    let items = 0;
    for (const p of parts) items += p.itemsCount;
    const w = await PartWriter.create(tmp, this.blockSize, this.opts.bloomNamespace, codecFor(items, flush));
    const keep = this.keepItem;
    try {
      const it = new MergeIterator(parts);
      let dropped = 0;
      while (it.next()) {
        if (keep !== undefined && !keep(it.buf, it.start, it.end)) {
          dropped++;
          continue;
        }
        w.add(it.buf, it.start, it.end);
        if (w.needsDrain()) await w.drain();
      }
      this.stats.droppedItems += dropped;
      await w.finish();
    } catch (err) {
      await w.abort();
      fs.rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    if (w.itemsCount === 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      return undefined;
    }
    const dst = path.join(this.dir, PARTS_DIR, name);
    fs.renameSync(tmp, dst);
    fsyncDir(path.join(this.dir, PARTS_DIR));
    return FilePart.open(dst, this.cache);
  }

  private writePartsJson(): void {
    const pj: PartsJson = { formatVersion: PARTS_JSON_VERSION, parts: this.fileParts.map((p) => p.name) };
    writeFileAtomic(this.dir, PARTS_JSON, JSON.stringify(pj));
  }

  private scheduleMerge(): void {
    if (this.mergeRunning !== undefined || this.closed) return;
    if (this.pickMerge(false) === undefined) return;
    this.mergeRunning = this.runMerges()
      .catch((err: unknown) => this.fail(err))
      .finally(() => (this.mergeRunning = undefined));
  }

  private async runMerges(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const sel = this.pickMerge(false);
      if (sel === undefined) return;
      await this.mergeParts(sel);
    }
  }

  /**
   * Chooses parts to merge like VictoriaMetrics: among windows of size-sorted idle parts (at
   * most fanIn), the one whose total is largest relative to its biggest part, so that merges
   * combine parts of similar size and write amplification stays logarithmic.
   */
  private pickMerge(all: boolean): FilePart[] | undefined {
    const idle = this.fileParts.filter((p) => !p.busy).sort((a, b) => a.sizeBytes - b.sizeBytes);
    if (idle.length < 2) return undefined;
    if (all) return idle.slice(0, this.fanIn);
    let best: FilePart[] | undefined;
    let bestRatio = 0;
    const maxLen = Math.min(this.fanIn, idle.length);
    for (let len = maxLen; len >= 2; len--) {
      for (let s = 0; s + len <= idle.length; s++) {
        let sum = 0;
        for (let i = s; i < s + len; i++) sum += idle[i]!.sizeBytes;
        const ratio = sum / Math.max(1, idle[s + len - 1]!.sizeBytes);
        if (ratio > bestRatio) {
          bestRatio = ratio;
          best = idle.slice(s, s + len);
        }
      }
    }
    if (best === undefined) return undefined;
    if (best.length >= 4 && bestRatio >= 2.5) return best;
    if (this.fileParts.length > 2 * this.fanIn) return best;
    return undefined;
  }

  private async mergeParts(sel: FilePart[]): Promise<void> {
    for (const p of sel) p.busy = true;
    let fp: FilePart | undefined;
    try {
      fp = await this.writePart(sel, false);
    } catch (err) {
      for (const p of sel) p.busy = false;
      throw err;
    }
    if (this.closed && fp !== undefined) {
      // close() raced with us: keep the table as listed, drop the new part.
      fp.close();
      fs.rmSync(fp.dir, { recursive: true, force: true });
      return;
    }
    const selSet = new Set<Part>(sel);
    this.fileParts = this.fileParts.filter((p) => !selSet.has(p));
    if (fp !== undefined) this.fileParts.push(fp);
    this.writePartsJson();
    for (const p of sel) {
      this.stats.mergedItems += p.itemsCount;
      this.retire(p);
    }
    this.invalidate();
    this.stats.merges++;
  }

  /** Flushes, then merges all file parts into one (rewriting through keepItem). */
  forceMerge(): Promise<void> {
    const p = this.forceChain.then(() => this.doForceMerge());
    this.forceChain = p.catch(() => undefined);
    return p;
  }

  private async doForceMerge(): Promise<void> {
    await this.flush();
    while (this.mergeRunning !== undefined) await this.mergeRunning;
    for (;;) {
      if (this.closed) return;
      const sel = this.pickMerge(true);
      if (sel === undefined) {
        // a single part is rewritten too, so that keepItem applies
        const only = this.fileParts.length === 1 ? this.fileParts[0]! : undefined;
        if (only !== undefined && this.keepItem !== undefined && !only.busy) await this.mergeParts([only]);
        return;
      }
      await this.mergeParts(sel);
    }
  }

  /** Flushes, then hard-links every file part into `dst` with its own parts.json. */
  async linkSnapshot(dst: string): Promise<void> {
    await this.flush();
    const snap = this.snapshot(false);
    try {
      const files = snap.parts.filter((p): p is FilePart => p instanceof FilePart);
      fs.mkdirSync(path.join(dst, PARTS_DIR), { recursive: true });
      for (const p of files) {
        const pd = path.join(dst, PARTS_DIR, p.name);
        fs.mkdirSync(pd, { recursive: true });
        for (const f of fs.readdirSync(p.dir)) fs.linkSync(path.join(p.dir, f), path.join(pd, f));
        fsyncDir(pd);
      }
      fsyncDir(path.join(dst, PARTS_DIR));
      const pj: PartsJson = { formatVersion: PARTS_JSON_VERSION, parts: files.map((p) => p.name) };
      writeFileAtomic(dst, PARTS_JSON, JSON.stringify(pj));
    } finally {
      snap.release();
    }
  }

  /**
   * Items and items.bin bytes per item kind (first byte, two hex digits) over the on-disk
   * parts; parts without the figures (format 1) count under "old".
   */
  kindSizes(): KindSizes {
    const out: KindSizes = {};
    const add = (k: string, items: number, bytes: number): void => {
      const e = (out[k] ??= { items: 0, bytes: 0 });
      e.items += items;
      e.bytes += bytes;
    };
    for (const p of this.fileParts) {
      const kinds = p.meta.kinds;
      if (kinds === undefined) add("old", p.itemsCount, p.meta.itemsBinBytes);
      else for (const [k, v] of Object.entries(kinds)) add(k, v.items, v.bytes);
    }
    return out;
  }

  /** The decoded-block cache (for `strata_cache_*` metrics). */
  get blockCache(): CacheStats {
    return this.cache;
  }

  metrics(): Record<string, number> {
    let memItems = 0;
    let memBytes = 0;
    let memFlushing = 0;
    for (const p of this.memParts) {
      memItems += p.itemsCount;
      memBytes += p.sizeBytes;
      if (p.busy) memFlushing++;
    }
    let fileItems = 0;
    let fileBytes = 0;
    for (const p of this.fileParts) {
      fileItems += p.itemsCount;
      fileBytes += p.sizeBytes;
    }
    return {
      pending_items: this.pending.count,
      pending_bytes: this.pending.sizeBytes,
      inmemory_parts: this.memParts.length,
      inmemory_parts_flushing: memFlushing,
      inmemory_items: memItems,
      inmemory_bytes: memBytes,
      inmemory_max_bytes: this.maxInMemoryBytes,
      file_parts: this.fileParts.length,
      file_items: fileItems,
      file_bytes: fileBytes,
      block_cache_bytes: this.cache.sizeBytes,
      block_cache_cap_bytes: this.cache.maxBytes,
      block_cache_entries: this.cache.entries,
      block_cache_hits_total: this.cache.hits,
      block_cache_misses_total: this.cache.misses,
      items_added_total: this.stats.itemsAdded,
      flushes_total: this.stats.flushes,
      merges_total: this.stats.merges,
      merged_items_total: this.stats.mergedItems,
      inmemory_merges_total: this.stats.inMemoryMerges,
      dropped_items_total: this.stats.droppedItems,
      background_errors_total: this.stats.errors,
    };
  }

  /** Flushes what was added, waits for merges, releases files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.flush();
    this.closed = true;
    while (this.mergeRunning !== undefined) await this.mergeRunning;
    await this.forceChain;
    if (this.bgFlush !== undefined) await this.bgFlush;
    await this.flushChain;
    this.invalidate();
    for (const p of [...this.memParts, ...this.fileParts]) this.unrefPart(p);
    this.memParts = [];
    this.fileParts = [];
  }
}
