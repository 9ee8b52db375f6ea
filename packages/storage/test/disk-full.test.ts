import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeMetricName, DEFAULT_TENANT, newMatcher, StrataError } from "@strata/core";
import { IndexDB, mergeSeriesBlocks, type Storage, type StorageEvent } from "@strata/storage";
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from "../../../test/lib/tmpfs.js";
import { batchOf, nameBytes, openTestStorage, rmDir, tmpDir } from "./helpers.js";

const T0 = Date.UTC(2026, 10, 2, 12);
const now = (): number => T0 + 3_600_000;
/** Rows per test batch; batch k holds series b{s} with samples at T0 + k * ROWS + j. */
const ROWS = 400;

function batch(k: number): Uint8Array {
  return batchOf(Array.from({ length: ROWS }, (_, j) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "b", s: String(j % 8) }, t: T0 + k * ROWS + j, v: k * ROWS + j })));
}

/** timestamp → value of every sample of metric b. */
function samplesOf(s: Storage): Map<number, number> {
  const out = new Map<number, number>();
  const c = s.search(DEFAULT_TENANT, [newMatcher("=", "__name__", "b")], 0, T0 + 1e10);
  while (c.next()) {
    const series = c.at();
    expect(decodeMetricName(series.metricName).labels.find((l) => l.name === "__name__")?.value).toBe("b");
    const { timestamps, values } = mergeSeriesBlocks(series.blocks, c.minT, c.maxT);
    for (let i = 0; i < timestamps.length; i++) out.set(timestamps[i]!, values[i]!);
  }
  return out;
}

/** The batches (of `ks`) not found whole and right in `have`. */
function missing(have: Map<number, number>, ks: Iterable<number>): number[] {
  const out: number[] = [];
  for (const k of ks) {
    for (let j = 0; j < ROWS; j++) {
      if (have.get(T0 + k * ROWS + j) !== k * ROWS + j) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

/**
 * Opens a copy of `dir` as a killed process would have left it (no close, no flush), after
 * `edit` (damage) when given; `check` sees it with every replayed row searchable.
 */
async function crashImage(dir: string, check: (s: Storage, events: StorageEvent[]) => void, edit?: (copy: string) => void): Promise<void> {
  const copy = tmpDir("strata-crash-image-");
  try {
    cpSync(dir, copy, { recursive: true });
    edit?.(copy);
    const events: StorageEvent[] = [];
    const s = await openTestStorage(copy, { now, onEvent: (e) => events.push(e) });
    try {
      await s.forceFlush();
      check(s, events);
    } finally {
      await s.close();
    }
  } finally {
    rmDir(copy);
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Record 2 (of 3) of a segment starts here: after the magic and record 1. */
const secondRecord = (seg: Buffer): number => 8 + 8 + seg.readUInt32LE(8);

describe("WAL replay of damaged segments", () => {
  // Three batches in one segment, the segment edited, then opened: replay must return every
  // whole record — also those after a damaged one — and say where it skipped bytes.
  it.each([
    { name: "a payload byte flipped", edit: (b: Buffer) => void (b[secondRecord(b) + 8 + 5]! ^= 0xff), lost: [1], damagedAt: secondRecord },
    { name: "the length word overwritten", edit: (b: Buffer) => void b.writeUInt32LE(0x7fffff00, secondRecord(b)), lost: [1], damagedAt: secondRecord },
    { name: "the header zeroed", edit: (b: Buffer) => void b.fill(0, secondRecord(b), secondRecord(b) + 8), lost: [1], damagedAt: secondRecord },
    { name: "a torn tail (no whole record after it)", edit: (b: Buffer) => b.subarray(0, b.length - 100), lost: [2], damagedAt: undefined },
  ])("$name: the other records replay; damage is reported with its file and offset", async ({ edit, lost, damagedAt }) => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      for (let k = 0; k < 3; k++) await s.addRows(batch(k));
      let file = "";
      let offset: number | undefined;
      await crashImage(
        dir,
        (s2, events) => {
          const have = samplesOf(s2);
          expect(missing(have, [0, 1, 2].filter((k) => !lost.includes(k)))).toEqual([]);
          expect(missing(have, lost)).toEqual(lost);
          expect(s2.metrics().wal_damaged_records_total).toBe(offset === undefined ? 0 : 1);
          expect(s2.metrics().wal_torn_segments_total).toBe(offset === undefined ? 1 : 0);
          if (offset !== undefined) expect(events).toContainEqual(expect.objectContaining({ kind: "wal_damaged", file, offset }));
        },
        (copy) => {
          const walDir = join(copy, "wal");
          file = join(walDir, readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort().at(-1)!);
          const buf = readFileSync(file);
          offset = damagedAt?.(buf);
          writeFileSync(file, edit(buf) ?? buf);
        },
      );
      await s.close();
    } finally {
      rmDir(dir);
    }
  });
});

const unavailable = tmpfsUnavailable();
if (unavailable !== undefined && process.env["CI"] === "true") throw new Error(`disk-full tests cannot run in CI: ${unavailable}`);

describe.skipIf(unavailable !== undefined)(`storage on a full disk (tmpfs)${unavailable !== undefined ? ` — skipped: ${unavailable}` : ""}`, () => {
  let fs: Tmpfs;
  beforeAll(async () => {
    fs = await mountTmpfs(8 << 20);
  });
  afterAll(() => fs?.close());

  it("a WAL append failing with ENOSPC leaves the WAL as before: every batch acknowledged before and after it replays", async () => {
    const dir = join(fs.path, "wal-enospc");
    const events: StorageEvent[] = [];
    const s = await openTestStorage(dir, { now, walFsyncIntervalMs: 0, minFreeDiskSpaceBytes: 0, onEvent: (e) => events.push(e) });
    const acked: number[] = [];
    let k = 0;
    try {
      for (; k < 5; k++) {
        await s.addRows(batch(k));
        acked.push(k);
      }
      // Less room than one record (~10 KB): the next append is cut short by ENOSPC.
      fs.fill(3000);
      let failure: unknown;
      for (; failure === undefined && k < 100; k++) {
        try {
          await s.addRows(batch(k));
          acked.push(k);
        } catch (err) {
          failure = err;
        }
      }
      expect(failure).toBeDefined();
      // The disk "grows": writes are taken again.
      fs.unfill();
      for (const end = k + 5; k < end; k++) {
        await s.addRows(batch(k));
        acked.push(k);
      }
      await crashImage(dir, (s2) => {
        expect(missing(samplesOf(s2), acked)).toEqual([]);
        expect(s2.metrics().wal_damaged_records_total).toBe(0);
        expect(s2.metrics().wal_torn_segments_total).toBe(0);
      });
      expect(failure).toBeInstanceOf(StrataError);
      expect((failure as StrataError).code).toBe("STRATA_DISK_FULL");
      expect(s.metrics().wal_append_errors_total).toBeGreaterThan(0);
      // No minimum free space set: no read-only mode, only the failed write.
      expect(events.filter((e) => e.kind === "read_only")).toEqual([]);
    } finally {
      fs.unfill();
      await s.close();
    }
  });

  it("below minFreeDiskSpaceBytes the storage is read-only (STRATA_READ_ONLY, nothing written) and leaves that mode when space returns", async () => {
    const dir = join(fs.path, "min-free");
    const s = await openTestStorage(dir, { now, minFreeDiskSpaceBytes: 1 << 20 });
    try {
      await s.addRows(batch(0));
      expect(s.readOnly).toBe(false);
      fs.fill(512 << 10);
      await until(() => s.readOnly, "read-only mode");
      expect(s.metrics().is_read_only).toBe(1);
      const appends = s.metrics().wal_appends_total;
      await expect(s.addRows(batch(1))).rejects.toMatchObject({ code: "STRATA_READ_ONLY" });
      expect(s.metrics().wal_appends_total).toBe(appends);
      // Searches go on.
      await s.forceFlush();
      expect(missing(samplesOf(s), [0])).toEqual([]);
      fs.unfill();
      await until(() => !s.readOnly, "read-only mode to end");
      await s.addRows(batch(1));
      expect(s.metrics().is_read_only).toBe(0);
    } finally {
      fs.unfill();
      await s.close();
    }
  });

  it("a disk flush or merge failing with ENOSPC leaves no part behind and loses no row; the WAL stays until the rows are on disk", async () => {
    const dir = join(fs.path, "flush-enospc");
    const s = await openTestStorage(dir, { now, onEvent: () => {} });
    const acked: number[] = [];
    try {
      for (let k = 0; k < 3; k++) {
        await s.addRows(batch(k));
        acked.push(k);
        await s.forceFlush();
      }
      for (let k = 3; k < 40; k++) {
        await s.addRows(batch(k));
        acked.push(k);
      }
      const before = partDirs(dir);
      fs.fill(0);
      await expect(s.forceFlush()).rejects.toThrow(/ENOSPC/);
      await expect(s.forceMerge()).rejects.toThrow(/ENOSPC/);
      expect(partDirs(dir)).toEqual(before);
      expect(missing(samplesOf(s), acked)).toEqual([]);
      fs.unfill();
      // A process killed now must find every row (the WAL was not dropped).
      await crashImage(dir, (s2) => expect(missing(samplesOf(s2), acked)).toEqual([]));
      await s.forceFlush();
      await s.forceMerge();
      expect(missing(samplesOf(s), acked)).toEqual([]);
      expect(partDirs(dir).filter((d) => d.includes("tmp."))).toEqual([]);
    } finally {
      fs.unfill();
      await s.close();
    }
    const s3 = await openTestStorage(dir, { now });
    try {
      expect(missing(samplesOf(s3), acked)).toEqual([]);
    } finally {
      await s3.close();
    }
  });

  it("a node killed on a nearly full disk starts again on it read-only and replays its WAL; on a full one it refuses to start, saying why", async () => {
    const dir = join(fs.path, "start-full");
    const image = join(fs.path, "start-full-image");
    const s = await openTestStorage(dir, { now, minFreeDiskSpaceBytes: 1 << 20 });
    const acked: number[] = [];
    try {
      for (let k = 0; k < 20; k++) {
        await s.addRows(batch(k));
        acked.push(k);
      }
      cpSync(dir, image, { recursive: true }); // what kill -9 leaves
    } finally {
      await s.close();
    }
    try {
      // No room at all: replay cannot record new series; the open fails naming the cause.
      fs.fill(0);
      await expect(openTestStorage(image, { now, minFreeDiskSpaceBytes: 1 << 20, onEvent: () => {} })).rejects.toMatchObject({
        code: "STRATA_DISK_FULL",
        message: expect.stringContaining("cannot start") as unknown,
      });
      // Below the minimum but not full: it starts read-only with every acknowledged row.
      fs.unfill();
      fs.fill(256 << 10);
      const s2 = await openTestStorage(image, { now, minFreeDiskSpaceBytes: 1 << 20, onEvent: () => {} });
      try {
        expect(s2.readOnly).toBe(true);
        await expect(s2.addRows(batch(100))).rejects.toMatchObject({ code: "STRATA_READ_ONLY" });
        await s2.forceFlush().catch(() => undefined); // the rows become searchable even if no part fits
        expect(missing(samplesOf(s2), acked)).toEqual([]);
        fs.unfill();
        await until(() => !s2.readOnly, "read-only mode to end");
        await s2.forceFlush();
      } finally {
        fs.unfill();
        await s2.close();
      }
    } finally {
      fs.unfill();
    }
  });

  it("a series id whose high-water mark cannot be persisted (ENOSPC) is not handed out: no id can be reused after a crash", async () => {
    const dir = join(fs.path, "indexdb-ids");
    const db = await IndexDB.open(dir, { idReserve: 4 });
    const name = (i: number): Uint8Array => nameBytes(DEFAULT_TENANT, { __name__: "ids", i: String(i) });
    const day = Math.floor(T0 / 86_400_000);
    try {
      const ids: number[] = [];
      let i = 0;
      for (; i < 3; i++) ids.push(db.getOrCreateTSID(name(i), day).metricID);
      fs.fill(0);
      // Ids up to the persisted mark may still be handed out; past it, every new series fails
      // while the mark cannot be written — not only the first one.
      let failures = 0;
      for (; i < 20; i++) {
        try {
          ids.push(db.getOrCreateTSID(name(i), day).metricID);
        } catch {
          failures++;
        }
      }
      expect(failures).toBeGreaterThan(0);
      expect(ids.length).toBeLessThanOrEqual(4);
      fs.unfill();
      const next = db.getOrCreateTSID(name(100), day).metricID;
      expect(next).toBeGreaterThan(Math.max(...ids));
    } finally {
      fs.unfill();
      await db.close();
    }
  });
});

/** Every entry of every partition directory (parts, temp dirs, parts.json). */
function partDirs(dir: string): string[] {
  const data = join(dir, "data");
  const out: string[] = [];
  for (const p of readdirSync(data)) for (const f of readdirSync(join(data, p))) out.push(`${p}/${f}`);
  return out.sort();
}
