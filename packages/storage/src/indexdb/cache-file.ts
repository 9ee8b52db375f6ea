import * as fs from "node:fs";
import * as path from "node:path";
import { crc32 } from "node:zlib";
import { BadDataError } from "@strata/core";
import { ByteBuffer, ByteReader, readU32, readU64 } from "../bytes.js";
import { fsyncDir, writeFileAtomic } from "../fsutil.js";
import { type TSID, TSID_SIZE, decodeTSID, encodeTSID } from "../tsid.js";

/**
 * The metricName → TSID cache saved on a clean close (like VictoriaMetrics' cache/ dir), so
 * that a restart does not resolve every active series through the index again. Layout:
 * `u32 magic "STC1" | u64 idHighWater | u32 count | { uvarint len | name | TSID | u32 day }* |
 * u32 crc32`. Entries are valid only for the index state they were saved with: the file is
 * deleted (and the deletion made durable) as soon as it is read.
 */

const TSID_CACHE_FILE = "tsid-cache.bin";
/** "STC1": Strata TSID cache, version 1. */
const TSID_CACHE_MAGIC = 0x5354_4331;

/** A cached series as saved: metric-name bytes, TSID, last day with per-day entries (-1: none known). */
export type SavedSeries = readonly [name: Uint8Array, tsid: TSID, day: number];

/** Writes the entries that are not deleted and have a day. */
export function saveTsidCache(dir: string, idHighWater: number, entries: Iterable<SavedSeries>, deleted: ReadonlySet<number>): void {
  const bb = new ByteBuffer(1 << 16);
  bb.u32(TSID_CACHE_MAGIC);
  bb.u64(idHighWater);
  bb.u32(0);
  let n = 0;
  for (const [name, tsid, day] of entries) {
    if (deleted.has(tsid.metricID) || day < 0) continue;
    bb.uvarint(name.length);
    bb.bytes(name);
    bb.ensure(TSID_SIZE);
    encodeTSID(tsid, bb.buf, bb.len);
    bb.len += TSID_SIZE;
    bb.u32(day);
    n++;
  }
  if (n === 0) return;
  const b = bb.buf;
  b[12] = n >>> 24;
  b[13] = (n >>> 16) & 0xff;
  b[14] = (n >>> 8) & 0xff;
  b[15] = n & 0xff;
  bb.u32(crc32(bb.view()) >>> 0);
  writeFileAtomic(dir, TSID_CACHE_FILE, bb.view());
}

/**
 * Reads and deletes the saved cache; calls `set` for every entry that is not deleted when the
 * file was saved for `idHighWater` and is whole. Returns false when a damaged file was read
 * only in part (the caller starts cold rather than trust part of it).
 */
export function loadTsidCache(dir: string, idHighWater: number, deleted: ReadonlySet<number>, set: (...e: SavedSeries) => void): boolean {
  const file = path.join(dir, TSID_CACHE_FILE);
  if (!fs.existsSync(file)) return true;
  const data = fs.readFileSync(file);
  fs.rmSync(file);
  fsyncDir(dir);
  const b = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (b.length < 20 || (crc32(b.subarray(0, b.length - 4)) >>> 0) !== readU32(b, b.length - 4)) return true;
  if (readU32(b, 0) !== TSID_CACHE_MAGIC || readU64(b, 4) !== idHighWater) return true;
  const n = readU32(b, 12);
  const r = new ByteReader(b, 16, b.length - 4, () => {
    throw new BadDataError("tsid cache truncated", "STRATA_CORRUPT_DATA");
  });
  try {
    for (let i = 0; i < n; i++) {
      const len = r.uvarint();
      const name = r.bytes(len);
      const tsid = decodeTSID(r.bytes(TSID_SIZE), 0);
      const day = r.u32();
      if (!deleted.has(tsid.metricID)) set(name, tsid, day);
    }
  } catch {
    return false;
  }
  return true;
}
