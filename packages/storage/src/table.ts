import { existsSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { DATA_DIR, DELETED_SUFFIX, TMP_PREFIX } from "./constants.js";
import { fsyncDir, removeDir } from "./fsutil.js";
import type { IndexBlockCache, Part } from "./part.js";
import { parsePartitionName, Partition } from "./partition.js";

/** Part counts and sizes over every partition, for Storage.metrics(). */
export interface TableStats {
  smallParts: number;
  bigParts: number;
  diskBytes: number;
  diskRows: number;
  inmemParts: number;
  inmemRows: number;
  blocks: number;
}

/**
 * The monthly partitions of one store (`<dir>/data/YYYY_MM`), the sequence that names new parts,
 * and the bytes held by in-memory parts. Retention drops whole partitions here.
 */
export class Table {
  readonly partitions = new Map<number, Partition>();
  readonly dataDir: string;
  /** Bytes of the in-memory parts of every partition. */
  inmemoryBytes = 0;
  private nextSeq = 1;

  constructor(
    dir: string,
    readonly indexBlockCache: IndexBlockCache,
  ) {
    this.dataDir = join(dir, DATA_DIR);
  }

  /** Opens every partition directory; removes leftovers of interrupted writes and retention drops. */
  load(): void {
    for (const f of readdirSync(this.dataDir)) {
      if (f.endsWith(DELETED_SUFFIX) || f.startsWith(TMP_PREFIX)) {
        removeDir(join(this.dataDir, f));
        continue;
      }
      const month = parsePartitionName(f);
      if (month === undefined) continue;
      const p = Partition.open(this.dataDir, month, this.indexBlockCache);
      this.partitions.set(month, p);
      for (const part of p.disk) this.nextSeq = Math.max(this.nextSeq, parseInt(part.name, 16) + 1);
    }
  }

  /** The next number of the sequence that names parts and snapshots (never reused while open). */
  nextSequence(): number {
    return this.nextSeq++;
  }

  newPartName(): string {
    return this.nextSequence().toString(16).padStart(16, "0");
  }

  partitionFor(month: number): Partition {
    let p = this.partitions.get(month);
    if (p === undefined) {
      p = Partition.create(this.dataDir, month);
      this.partitions.set(month, p);
    }
    return p;
  }

  /** The most on-disk parts of one partition. */
  maxDiskParts(): number {
    let n = 0;
    for (const p of this.partitions.values()) if (p.disk.length > n) n = p.disk.length;
    return n;
  }

  /** Acquires the parts of every partition overlapping [minT, maxT]. */
  acquireParts(minT: number, maxT: number): Part[] {
    const parts: Part[] = [];
    for (const p of this.partitions.values()) {
      if (p.maxT < minT || p.minT > maxT) continue;
      p.acquireParts(minT, maxT, parts);
    }
    return parts;
  }

  /** Drops the partitions whose every sample is older than minT; returns how many went. */
  dropBefore(minT: number): number {
    let dropped = 0;
    for (const [month, p] of this.partitions) {
      if (p.maxT >= minT) continue;
      p.dropped = true;
      this.partitions.delete(month);
      const gone = p.dir + DELETED_SUFFIX;
      const onDisk = existsSync(p.dir); // a partition with in-memory parts only has no directory yet
      if (onDisk) {
        renameSync(p.dir, gone);
        fsyncDir(this.dataDir);
      }
      for (const part of [...p.inmem, ...p.disk]) this.inmemoryBytes -= part.inMemory ? part.sizeBytes : 0;
      // Parts still read by a search stay open (unlinked files remain readable on Linux).
      p.releaseAll(false);
      removeDir(gone);
      dropped++;
    }
    return dropped;
  }

  stats(bigPartRows: number): TableStats {
    const s: TableStats = { smallParts: 0, bigParts: 0, diskBytes: 0, diskRows: 0, inmemParts: 0, inmemRows: 0, blocks: 0 };
    for (const p of this.partitions.values()) {
      for (const part of p.disk) {
        if (part.meta.rows >= bigPartRows) s.bigParts++;
        else s.smallParts++;
        s.diskBytes += part.sizeBytes;
        s.diskRows += part.meta.rows;
        s.blocks += part.meta.blocks;
      }
      s.inmemParts += p.inmem.length;
      for (const part of p.inmem) s.inmemRows += part.meta.rows;
    }
    return s;
  }

  /** Releases every part (the store is closing). */
  close(): void {
    for (const p of this.partitions.values()) p.releaseAll(false);
    this.partitions.clear();
  }
}
