import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BadDataError } from "@strata/core";
import { PARTS_JSON, TMP_PREFIX } from "./constants.js";
import { removeDir, writeFileAtomic, writeFileAtomicAsync } from "./fsutil.js";
import { Part, type IndexBlockCache } from "./part.js";

/** parts.json: the atomic list of a partition's on-disk parts. */
export interface PartsJson {
  version: 1;
  parts: string[];
}

/** Months since 1970-01 (UTC) of a timestamp: partitions are monthly. */
export function monthOf(ts: number): number {
  const d = new Date(ts);
  return (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth();
}

export function monthStart(month: number): number {
  return Date.UTC(1970 + Math.floor(month / 12), ((month % 12) + 12) % 12, 1);
}

/** Directory name of a monthly partition: `YYYY_MM`. */
export function partitionName(month: number): string {
  const y = 1970 + Math.floor(month / 12);
  const m = (((month % 12) + 12) % 12) + 1;
  return `${String(y).padStart(4, "0")}_${String(m).padStart(2, "0")}`;
}

export function parsePartitionName(name: string): number | undefined {
  const m = /^(\d{4})_(\d{2})$/.exec(name);
  if (!m) return undefined;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return undefined;
  return (Number(m[1]) - 1970) * 12 + month - 1;
}

/**
 * A monthly time partition: its searchable in-memory parts and its on-disk parts. All part list
 * changes happen synchronously on the event loop, so a reader that copies the lists (and
 * acquires the parts) sees one consistent set. parts.json writes are serialized by `withLock`.
 */
export class Partition {
  readonly inmem: Part[] = [];
  disk: Part[] = [];
  readonly merging = new Set<Part>();
  readonly minT: number;
  readonly maxT: number;
  private lock: Promise<void> = Promise.resolve();
  dropped = false;

  private constructor(
    readonly month: number,
    readonly dir: string,
  ) {
    this.minT = monthStart(month);
    this.maxT = monthStart(month + 1) - 1;
  }

  get name(): string {
    return partitionName(this.month);
  }

  /** A new partition; its directory is made with its first on-disk part (not before: no disk write on the in-memory path). */
  static create(dataDir: string, month: number): Partition {
    return new Partition(month, join(dataDir, partitionName(month)));
  }

  /**
   * Opens a partition directory: loads the parts listed in parts.json and removes everything
   * else (temporary directories of interrupted writes, parts replaced by a merge).
   */
  static open(dataDir: string, month: number, cache: IndexBlockCache): Partition {
    const p = new Partition(month, join(dataDir, partitionName(month)));
    let listed: string[] = [];
    const pj = join(p.dir, PARTS_JSON);
    if (existsSync(pj)) {
      try {
        const parsed = JSON.parse(readFileSync(pj, "utf8")) as PartsJson;
        listed = parsed.parts;
      } catch (err) {
        throw new BadDataError(`${pj}: unreadable: ${String(err)}`, "STRATA_CORRUPT_DATA", { cause: err });
      }
    }
    const keep = new Set(listed);
    for (const f of readdirSync(p.dir)) {
      if (f === PARTS_JSON || keep.has(f)) continue;
      if (f.startsWith(TMP_PREFIX) || /^[0-9a-f]{16}$/.test(f) || f === `${PARTS_JSON}.tmp`) removeDir(join(p.dir, f));
    }
    try {
      for (const name of listed) p.disk.push(Part.open(join(p.dir, name), name, cache));
    } catch (err) {
      for (const part of p.disk) part.release();
      throw err;
    }
    return p;
  }

  /** Runs fn exclusively with respect to other parts.json updates of this partition. */
  withLock<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Writes parts.json for the given list (temp + fsync + rename + fsync dir). */
  writePartsJson(parts: readonly Part[]): void {
    const pj: PartsJson = { version: 1, parts: parts.map((p) => p.name) };
    writeFileAtomic(this.dir, PARTS_JSON, JSON.stringify(pj));
  }

  /** writePartsJson with the fsyncs on the thread pool (call under withLock). */
  writePartsJsonAsync(parts: readonly Part[]): Promise<void> {
    const pj: PartsJson = { version: 1, parts: parts.map((p) => p.name) };
    return writeFileAtomicAsync(this.dir, PARTS_JSON, JSON.stringify(pj));
  }

  /** Acquires and returns every part (in-memory and on-disk) overlapping [minT, maxT]. */
  acquireParts(minT: number, maxT: number, out: Part[]): void {
    for (const list of [this.disk, this.inmem]) {
      for (const part of list) {
        if (part.meta.blocks === 0 || part.meta.maxT < minT || part.meta.minT > maxT) continue;
        part.acquire();
        out.push(part);
      }
    }
  }

  /** Releases every part (storage closing or partition dropped). */
  releaseAll(removeFiles: boolean): void {
    for (const part of [...this.inmem, ...this.disk]) {
      part.removeOnFree = removeFiles;
      part.release();
    }
    this.inmem.length = 0;
    this.disk = [];
  }
}
