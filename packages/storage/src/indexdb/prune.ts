import * as fs from "node:fs";
import * as path from "node:path";
import { crc32 } from "node:zlib";
import { ByteBuffer, readU32, readU64, writeU32 } from "../bytes.js";
import { fsyncDir, writeFileAtomic } from "../fsutil.js";
import type { Cursor } from "../mergeset/cursor.js";
import type { Snapshot } from "../mergeset/index.js";
import { IdBitmap } from "./idset.js";
import { NS_DAY_ALL, NS_ID } from "./keys.js";

/**
 * Pruning: the series with no per-day entry inside the retention leave the global index too (as
 * VictoriaMetrics' indexdb rotation does), so churned series do not grow the index forever. The
 * set being pruned is persisted in prune.bin until every part was rewritten without it.
 */

export const PRUNE_FILE = "prune.bin";
/** "SPR1": Strata prune set, version 1. */
const PRUNE_MAGIC = 0x5350_5231;
/** Items scanned between yields to the event loop while computing the prune set. */
const PRUNE_SCAN_CHUNK = 65_536;

/**
 * Finds the ids below `below` with no per-day entry on or after `minDay` in a snapshot, in steps
 * of a bounded number of items so the caller can let the event loop run in between (a small
 * index is scanned in one step, synchronously).
 */
export class UnusedSeriesScan {
  /** Items scanned per step. */
  static readonly CHUNK = PRUNE_SCAN_CHUNK;
  private readonly live = new IdBitmap();
  private readonly dead = new IdBitmap();
  private readonly skip = new Uint8Array(13);
  private c: Cursor;
  private phase: "days" | "ids" | "done" = "days";

  constructor(
    private readonly snap: Snapshot,
    private readonly minDay: number,
    private readonly below: number,
    /** Called once per per-day item read. */
    private readonly scanned: () => void,
  ) {
    this.c = snap.cursor();
    this.c.seek(new Uint8Array([NS_DAY_ALL]));
  }

  /** The unused ids, once step() returned true. */
  get result(): IdBitmap {
    return this.dead;
  }

  /** Scans up to `budget` items; true when the scan is complete. */
  step(budget: number): boolean {
    let n = 0;
    if (this.phase === "days") {
      const c = this.c;
      // `05 | tenant | day | id` sorts by tenant, then day: in each tenant, seek past the days
      // before minDay (merges drop them later) instead of reading them.
      while (c.next()) {
        this.scanned();
        if (c.length === 21) {
          if (readU32(c.buf, c.start + 9) < this.minDay) {
            this.skip.set(c.buf.subarray(c.start, c.start + 9));
            writeU32(this.skip, 9, this.minDay);
            c.seekForward(this.skip);
          } else this.live.add(readU64(c.buf, c.end - 8));
        }
        if (++n >= budget) return false;
      }
      this.phase = "ids";
      this.c = this.snap.cursor();
      this.c.seek(new Uint8Array([NS_ID]));
    }
    if (this.phase === "ids") {
      const c = this.c;
      while (c.next()) {
        if (c.buf[c.start] !== NS_ID) break;
        if (c.length >= 9) {
          const id = readU64(c.buf, c.start + 1);
          if (id < this.below && !this.live.has(id)) this.dead.add(id);
        }
        if (++n >= budget) return false;
      }
      this.phase = "done";
    }
    return true;
  }
}

/** prune.bin: `u32 magic "SPR1" | u32 words | u32 word* | u32 crc32` (big-endian). */
export function writePruneSet(bm: IdBitmap, dir: string): void {
  const w = bm.raw;
  let last = w.length;
  while (last > 0 && w[last - 1] === 0) last--;
  const bb = new ByteBuffer(12 + last * 4);
  bb.u32(PRUNE_MAGIC);
  bb.u32(last);
  for (let i = 0; i < last; i++) bb.u32(w[i]!);
  bb.u32(crc32(bb.view()) >>> 0);
  writeFileAtomic(dir, PRUNE_FILE, bb.view());
}

/** The persisted prune set of `dir`, if any (a damaged file is removed). */
export function loadPruneSet(dir: string): IdBitmap | undefined {
  const file = path.join(dir, PRUNE_FILE);
  if (!fs.existsSync(file)) return undefined;
  const data = fs.readFileSync(file);
  const b = new Uint8Array(data.buffer, data.byteOffset, data.length);
  const ok = b.length >= 12 && readU32(b, 0) === PRUNE_MAGIC && b.length === 12 + readU32(b, 4) * 4 &&
    (crc32(b.subarray(0, b.length - 4)) >>> 0) === readU32(b, b.length - 4);
  if (!ok) {
    // Written atomically, so this is damage from outside: pruning is only an optimisation and
    // the next retention step recomputes the set, so dropping the file loses nothing.
    fs.rmSync(file);
    fsyncDir(dir);
    return undefined;
  }
  const words = new Uint32Array(readU32(b, 4));
  for (let i = 0; i < words.length; i++) words[i] = readU32(b, 8 + i * 4);
  return IdBitmap.fromWords(words);
}

/** Removes prune.bin once every part was rewritten without the set. */
export function removePruneSet(dir: string): void {
  fs.rmSync(path.join(dir, PRUNE_FILE), { force: true });
  fsyncDir(dir);
}
