import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { Cursor, PartSeek, Table, compareBytes } from "../src/mergeset/index.js";

const dirs: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "strata-mergeset-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const small = { maxPendingItems: 7, maxInMemoryParts: 3, blockSize: 64, flushIntervalMs: 0, mergeFanIn: 3 };

function scan(t: Table, prefix: Uint8Array, from?: Uint8Array): string[] {
  const snap = t.snapshot();
  try {
    const c = snap.cursor();
    c.seek(prefix, from);
    const out: string[] = [];
    while (c.next()) out.push(hex(c.item));
    return out;
  } finally {
    snap.release();
  }
}

function modelScan(model: Set<string>, prefix: Uint8Array, from: Uint8Array = prefix): string[] {
  const p = hex(prefix);
  const f = Buffer.from(from);
  return [...model]
    .filter((h) => h.startsWith(p) && Buffer.compare(Buffer.from(h, "hex"), f) >= 0)
    .map((h) => Buffer.from(h, "hex"))
    .sort(compareBytes)
    .map(hex);
}

// Items over a tiny alphabet so that prefixes, duplicates and the escape-relevant bytes 0/1/255 collide often.
const item = fc.uint8Array({ minLength: 0, maxLength: 6 }).map((a) => a.map((x) => [0, 1, 2, 0x61, 0x62, 0xff][x % 6]!));

type Op =
  | { kind: "add"; items: Uint8Array[] }
  | { kind: "flush" }
  | { kind: "merge" }
  | { kind: "reopen" }
  | { kind: "seek"; prefix: Uint8Array; from: Uint8Array | undefined };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.array(item, { maxLength: 12 }).map((items) => ({ kind: "add" as const, items })) },
  { weight: 2, arbitrary: fc.constant({ kind: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "merge" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(item.map((a) => a.subarray(0, 2)), fc.option(item, { nil: undefined }))
      .map(([prefix, extra]) => ({
        kind: "seek" as const,
        prefix,
        from: extra === undefined ? undefined : new Uint8Array([...prefix, ...extra]),
      })),
  },
);

describe("mergeset Table", () => {
  it("matches a sorted in-memory model under random adds, flushes, merges and reopens", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = tmpdir();
        let t = await Table.open(dir, small);
        const model = new Set<string>();
        let durable = new Set<string>();
        try {
          for (const o of ops) {
            switch (o.kind) {
              case "add":
                for (const it of o.items) {
                  t.add(it);
                  model.add(hex(it));
                }
                break;
              case "flush":
                await t.flush();
                durable = new Set(model);
                break;
              case "merge":
                await t.forceMerge();
                durable = new Set(model);
                expect(t.metrics().file_parts).toBeLessThanOrEqual(1);
                break;
              case "reopen":
                await t.close(); // close flushes
                durable = new Set(model);
                t = await Table.open(dir, small);
                break;
              case "seek":
                expect(scan(t, o.prefix, o.from)).toEqual(modelScan(model, o.prefix, o.from));
                break;
            }
          }
          expect(scan(t, new Uint8Array(0))).toEqual(modelScan(model, new Uint8Array(0)));
          void durable;
        } finally {
          await t.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it("a point seek in one part finds the first item >= a key and steps like a cursor over that part", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(item, { maxLength: 40 }), { minLength: 1, maxLength: 4 }), fc.array(item, { minLength: 1, maxLength: 10 }), async (batches, keys) => {
        // blocks of 8 bytes: most parts have several, so seeks and steps cross block ends
        const t = await Table.open(tmpdir(), { ...small, blockSize: 8 });
        try {
          // a file part per batch, the last batch still in memory
          for (const [i, b] of batches.entries()) {
            for (const it of b) t.add(it);
            if (i < batches.length - 1) await t.flush();
          }
          const snap = t.snapshot();
          try {
            const ps = new PartSeek();
            for (const part of snap.parts) {
              for (const k of keys) {
                // the key sits in a longer buffer: only key[0, keyLen) counts
                const buf = new Uint8Array([...k, 0xff, 0x00]);
                const want: string[] = [];
                const c = new Cursor([part]);
                c.seek(new Uint8Array(0), k);
                while (c.next()) want.push(hex(c.item));
                const got: string[] = [];
                for (let ok = ps.seek(part, buf, k.length); ok; ok = ps.next()) got.push(hex(ps.buf.subarray(ps.start, ps.end)));
                expect(got).toEqual(want);
                if (ps.seek(part, buf, k.length)) expect(ps.hasPrefix(buf, k.length)).toBe(want[0]!.startsWith(hex(k)));
              }
            }
          } finally {
            snap.release();
          }
        } finally {
          await t.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it("keeps a snapshot readable while its parts are merged away, then deletes them", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, small);
    const want: string[] = [];
    for (let i = 0; i < 200; i++) {
      const it = Buffer.from(`k${String(i).padStart(4, "0")}`);
      t.add(it);
      want.push(hex(it));
      if (i % 20 === 19) await t.flush();
    }
    await t.flush();
    const snap = t.snapshot();
    const before = fs.readdirSync(path.join(dir, "parts")).length;
    expect(before).toBeGreaterThan(1);
    await t.forceMerge();
    // old part directories are still there: the snapshot holds them
    const c = snap.cursor();
    c.seek(new Uint8Array(0));
    const got: string[] = [];
    while (c.next()) got.push(hex(c.item));
    expect(got).toEqual(want);
    snap.release();
    expect(fs.readdirSync(path.join(dir, "parts")).length).toBe(1);
    expect(scan(t, Buffer.from("k01"))).toEqual(want.filter((h) => h.startsWith(hex(Buffer.from("k01")))));
    await t.close();
  });

  it("removes leftovers of interrupted writes on open and lists parts atomically", async () => {
    const dir = tmpdir();
    let t = await Table.open(dir, small);
    for (const s of ["a", "b", "c"]) t.add(Buffer.from(s));
    await t.close();
    fs.mkdirSync(path.join(dir, "parts", "00000000000000FF"));
    fs.writeFileSync(path.join(dir, "parts", "00000000000000FF", "items.bin"), "junk");
    fs.mkdirSync(path.join(dir, "tmp", "0000000000000100"), { recursive: true });
    fs.writeFileSync(path.join(dir, "parts.json.tmp"), "{garbage");
    t = await Table.open(dir, small);
    expect(fs.existsSync(path.join(dir, "parts", "00000000000000FF"))).toBe(false);
    expect(fs.readdirSync(path.join(dir, "tmp"))).toEqual([]);
    expect(scan(t, new Uint8Array(0))).toEqual(["61", "62", "63"]);
    await t.close();
  });

  it.each([
    ["items.bin", "checksum mismatch"],
    ["metaindex.bin", "checksum mismatch"],
    ["bloom.bin", "checksum mismatch"],
  ])("detects a flipped byte in %s", async (file, msg) => {
    const dir = tmpdir();
    let t = await Table.open(dir, { ...small, bloomNamespace: 0x61 });
    for (let i = 0; i < 50; i++) t.add(Buffer.from(`a${String(i).padStart(9, "0")}`));
    await t.close();
    const [part] = fs.readdirSync(path.join(dir, "parts"));
    const f = path.join(dir, "parts", part!, file);
    const b = fs.readFileSync(f);
    b[b.length >> 1]! ^= 0x40;
    fs.writeFileSync(f, b);
    const run = async (): Promise<void> => {
      t = await Table.open(dir, small);
      try {
        scan(t, new Uint8Array(0));
      } finally {
        await t.close();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: "STRATA_CORRUPT_DATA", message: expect.stringContaining(msg) });
  });

  it("stores lz4-compressed blocks where it pays and reads them back, corruption included", async () => {
    const dir = tmpdir();
    let t = await Table.open(dir, { blockSize: 4096, flushIntervalMs: 0 });
    const want: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const it = Buffer.from(`metric_name{job="node",instance="host-${i % 50}:9100",cpu="${i}"}`);
      t.add(it);
      want.push(hex(it));
    }
    await t.close();
    const [part] = fs.readdirSync(path.join(dir, "parts"));
    const itemsBin = path.join(dir, "parts", part!, "items.bin");
    const rawBytes = want.reduce((n, h) => n + h.length / 2, 0);
    expect(fs.statSync(itemsBin).size).toBeLessThan(rawBytes / 4);
    t = await Table.open(dir, { flushIntervalMs: 0 });
    expect(scan(t, new Uint8Array(0))).toEqual([...want].sort());
    await t.close();
    const b = fs.readFileSync(itemsBin);
    b[b.length >> 1]! ^= 0x01;
    fs.writeFileSync(itemsBin, b);
    t = await Table.open(dir, { flushIntervalMs: 0 });
    expect(() => scan(t, new Uint8Array(0))).toThrow(expect.objectContaining({ code: "STRATA_CORRUPT_DATA" }));
    await t.close();
  });

  it("drops items rejected by keepItem when parts are written", async () => {
    const dir = tmpdir();
    let drop = false;
    const t = await Table.open(dir, { ...small, keepItem: (b, start) => !(drop && b[start] === 0x78) });
    for (const s of ["x1", "x2", "y1"]) t.add(Buffer.from(s));
    await t.flush();
    expect(scan(t, Buffer.from("x"))).toHaveLength(2);
    drop = true;
    await t.forceMerge();
    expect(scan(t, new Uint8Array(0))).toEqual([hex(Buffer.from("y1"))]);
    await t.close();
  });

  it("a file part a merge replaced leaves the block cache once no snapshot reads it", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, { ...small, maxInMemoryParts: 100 });
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 200; i++) t.add(Buffer.from(`k${k}-${String(i).padStart(4, "0")}`));
      await t.flush();
    }
    expect(scan(t, new Uint8Array(0))).toHaveLength(600);
    const threeParts = t.metrics().block_cache_bytes!;
    expect(threeParts).toBeGreaterThan(0);
    const held = t.snapshot();
    await t.forceMerge();
    expect(t.metrics().file_parts).toBe(1);
    expect(t.metrics().block_cache_bytes).toBeGreaterThanOrEqual(threeParts);
    held.release();
    expect(t.metrics().block_cache_bytes).toBe(0);
    expect(scan(t, new Uint8Array(0))).toHaveLength(600);
    await t.close();
    expect(t.metrics().block_cache_bytes).toBe(0);
  });

  it("in-memory parts a flush is writing do not count against maxInMemoryParts", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, { ...small, maxPendingItems: 100, maxInMemoryParts: 4 });
    const batch = (k: number): void => {
      for (let i = 0; i < 100; i++) t.add(Buffer.from(`b${String(k).padStart(3, "0")}-${String(i).padStart(4, "0")}`));
    };
    for (let k = 0; k < 4; k++) batch(k);
    const flushed = t.flush();
    await new Promise((r) => setImmediate(r)); // the flush has taken its parts and is writing them
    expect(t.metrics().inmemory_parts_flushing).toBe(4);
    // Four conversions while it writes: four idle parts, not more than the cap, no merge.
    for (let k = 4; k < 8; k++) batch(k);
    expect(t.metrics().inmemory_parts).toBe(8);
    expect(t.metrics().inmemory_merges_total).toBe(0);
    // A fifth is one too many: the idle ones are merged, the flushing ones left alone.
    batch(8);
    expect(t.metrics().inmemory_merges_total).toBe(1);
    expect(t.metrics().inmemory_parts_flushing).toBe(4);
    await flushed;
    await t.flush();
    expect(scan(t, new Uint8Array(0))).toHaveLength(900);
    expect(t.metrics()).toMatchObject({ inmemory_parts: 0, inmemory_merges_total: 1 });
    await t.close();
  });

  it("hard-links a snapshot that opens as an equal table", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, small);
    for (let i = 0; i < 100; i++) t.add(Buffer.from(`s${i}`));
    const snapDir = path.join(tmpdir(), "snap");
    await t.linkSnapshot(snapDir);
    t.add(Buffer.from("after"));
    const s = await Table.open(snapDir, small);
    const all = scan(t, new Uint8Array(0));
    expect(scan(s, new Uint8Array(0))).toEqual(all.filter((h) => h !== hex(Buffer.from("after"))));
    await s.close();
    await t.close();
  });

  it("bloom-keyed cursors skip parts that cannot hold a key", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, { ...small, bloomNamespace: 0x01 });
    const key = (i: number): Buffer => {
      const b = Buffer.alloc(12);
      b[0] = 1;
      b.writeUInt32BE(i * 2654435761 >>> 0, 1);
      b.writeUInt32BE(i, 5);
      return b;
    };
    for (let i = 0; i < 300; i++) t.add(key(i));
    await t.flush();
    for (let i = 300; i < 330; i++) t.add(key(i));
    const snap = t.snapshot();
    for (let i = 0; i < 330; i++) {
      const k = key(i);
      const c = snap.keyedCursor(k.readUInt32BE(1), k.readUInt32BE(5));
      expect(c).toBeDefined();
      c!.seek(k);
      expect(c!.next()).toBe(true);
      expect(hex(c!.item)).toBe(hex(k));
    }
    let skipped = 0;
    for (let i = 1000; i < 1200; i++) {
      const k = key(i);
      if (snap.keyedCursor(k.readUInt32BE(1), k.readUInt32BE(5)) === undefined) skipped++;
    }
    expect(skipped).toBeGreaterThan(190);
    snap.release();
    await t.close();
  });
});
