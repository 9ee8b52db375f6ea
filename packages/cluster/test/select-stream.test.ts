import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareLabels, decodeMetricName, encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter, type Labels, type Tenant } from "@strata/core";
import { marshalBlockAt, marshaledBlockSize, mergeSeriesBlocks, Storage, type RawBlock } from "@strata/storage";
import { BlockRefs } from "../src/block-refs.js";
import { BlockSeriesStream, labelsSortKey, labelsSortKeyAt, sortKeyIndex, type StreamEntry } from "../src/select-stream.js";

/**
 * select's streamed selection: series come out in label order, batch by batch, each with exactly
 * the samples storage's own merge gives (replicas on two nodes collapse), and a batch's blocks
 * are dropped once it is decoded.
 */

const tenant: Tenant = { accountID: 3, projectID: 0 };
const dirs: string[] = [];
const nodes: Storage[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(join(tmpdir(), "strata-select-stream-"));
    dirs.push(dir);
    nodes.push(await Storage.open(dir, { retentionMs: 100 * 365 * 86_400_000, flushIntervalMs: 3_600_000, diskFlushIntervalMs: 3_600_000, walFsyncIntervalMs: 0 }));
  }
  // 40 series × 100 samples; every third series is on both nodes (a replica), the rest on one.
  for (let node = 0; node < 2; node++) {
    const w = new RowsBatchWriter();
    for (let i = 0; i < 40; i++) {
      if (i % 3 !== 0 && i % 2 !== node) continue;
      const name = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "m" }, { name: "i", value: String(i) }]) });
      for (let k = 0; k < 100; k++) w.add(name, k * 1000, i * 1000 + k);
    }
    nodes[node]!.addRowsSync(w.finish());
    await nodes[node]!.forceFlush();
  }
});

afterAll(async () => {
  for (const n of nodes) await n.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Entries as select collects them (blocks as rows into the frames they arrived in: here every
 * node's blocks of a series in one frame), and each series' blocks for the expected answer.
 */
function entries(): { list: (StreamEntry & { raw: RawBlock[] })[]; refs: BlockRefs } {
  const byKey = new Map<string, { labels: StreamEntry["labels"]; raw: RawBlock[]; first: number; last: number }>();
  const refs = new BlockRefs();
  for (const n of nodes) {
    const c = n.search(tenant, [newMatcher("=", "__name__", "m")], -Infinity, Infinity);
    while (c.next()) {
      const s = c.at();
      const labels = decodeMetricName(s.metricName).labels;
      const key = JSON.stringify(labels);
      const e = byKey.get(key) ?? { labels, raw: [], first: -1, last: -1 };
      // The cursor's block objects may be reused: keep copies.
      const blocks = s.blocks.map((b) => ({ ...b, timestamps: b.timestamps.slice(), values: b.values.slice() }));
      e.raw.push(...blocks);
      const wires = blocks.map(wire);
      const frame = new Uint8Array(wires.reduce((a, w) => a + w.length, 0));
      const f = refs.addFrame(frame);
      let at = 0;
      for (const w of wires) {
        frame.set(w, at);
        const row = refs.add(f, at, at + w.length);
        at += w.length;
        if (e.first < 0) e.first = row;
        else refs.link(e.last, row);
        e.last = row;
      }
      byKey.set(key, e);
    }
    c.close();
  }
  const list = [...byKey.values()].map((e) => ({ labels: e.labels, raw: e.raw, first: e.first, samples: e.raw.reduce((a, b) => a + b.count, 0) }));
  return { list, refs };
}

function wire(b: RawBlock): Uint8Array {
  const out = new Uint8Array(marshaledBlockSize(b));
  marshalBlockAt(b, out, 0);
  return out;
}

describe("BlockSeriesStream", () => {
  it.each([1, 250, 1000, 1_000_000])("batches of at most %i samples give every series in label order with storage's samples", async (batch) => {
    const { list, refs } = entries();
    const want = new Map(list.map((e) => [JSON.stringify(e.labels), mergeSeriesBlocks(e.raw, 10_500, 80_000, 0)]));
    const s = new BlockSeriesStream(list, refs, 10_500, 80_000, 0, undefined, [], batch);
    expect(s.labels).toHaveLength(40);
    const seen: string[] = [];
    let batches = 0;
    for (let b = await s.nextBatch(); b !== undefined; b = await s.nextBatch()) {
      batches++;
      const samples = b.reduce((a, x) => a + x.timestamps.length, 0);
      // One series per batch when a series alone is over the size.
      if (b.length > 1) expect(samples).toBeLessThanOrEqual(Math.max(batch, 100));
      for (const x of b) {
        const w = want.get(JSON.stringify(x.labels))!;
        expect(Array.from(x.timestamps)).toEqual(Array.from(w.timestamps));
        expect(Array.from(x.values)).toEqual(Array.from(w.values));
        seen.push(JSON.stringify(x.labels));
      }
    }
    expect(seen).toEqual([...s.labels].sort(compareLabels).map((l) => JSON.stringify(l)));
    // Replicated series count their blocks on both nodes (200 samples) when batches are cut.
    if (batch < 200) expect(batches).toBe(40);
    else if (batch === 1_000_000) expect(batches).toBe(1);
    else expect(batches).toBeGreaterThanOrEqual(Math.ceil((40 * 100) / batch));
    // Every series' blocks were let go of once decoded, and with them every frame.
    expect(list.every((e) => e.first === -1)).toBe(true);
    expect(refs.frames.every((f) => f.length === 0)).toBe(true);
    s.close();
  });

  it("close() drops the blocks not decoded yet", async () => {
    const { list, refs } = entries();
    const s = new BlockSeriesStream(list, refs, 0, 100_000, 0, undefined, [], 200);
    expect((await s.nextBatch())?.length).toBeGreaterThan(0);
    expect(refs.frames.some((f) => f.length > 0)).toBe(true);
    s.close();
    expect(await s.nextBatch()).toBeUndefined();
    expect(list.every((e) => e.first === -1)).toBe(true);
    expect(refs.frames.every((f) => f.length === 0)).toBe(true);
  });
});

describe("labelsSortKey", () => {
  // Names and values from a small alphabet that makes prefixes, equal labels and the code points
  // where UTF-16 order and code point order part (U+E000..U+FFFF against astral characters).
  const chars = fc.constantFrom("a", "b", "_", "0", "é", "\u{e000}", "\u{ffff}", "\u{1f600}", "\u{10000}", "~");
  const text = fc.array(chars, { minLength: 1, maxLength: 4 }).map((a) => a.join(""));
  const labelSet = fc.uniqueArray(fc.record({ name: text, value: text }), { maxLength: 4, selector: (l) => l.name }).map((ls) => normalizeLabels(ls));

  it("orders canonical names as compareLabels orders their labels", () => {
    fc.assert(
      fc.property(fc.array(labelSet, { minLength: 2, maxLength: 30 }), (sets) => {
        const keyed = sets.map((labels) => ({ labels, key: labelsSortKey(encodeMetricName({ tenant, labels }))! }));
        for (const k of keyed) expect(k.key).toBeDefined();
        const byKey = [...keyed].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((k) => JSON.stringify(k.labels));
        const byLabels = [...sets].sort(compareLabels).map((l) => JSON.stringify(l));
        expect(byKey).toEqual(byLabels);
      }),
      { numRuns: 500 },
    );
  });

  it("keys ending with their entries' positions sort without a comparator as compareLabels orders the labels", () => {
    fc.assert(
      fc.property(fc.uniqueArray(labelSet, { minLength: 2, maxLength: 40, selector: (l) => JSON.stringify(l) }), fc.nat(1 << 24), (sets, base) => {
        // Positions past 2^16 and 2^8 too: every index byte, zero included.
        const at = (i: number) => (base + i * 257) % (1 << 24);
        const keys = sets.map((labels, i) => labelsSortKey(encodeMetricName({ tenant, labels }), at(i))!);
        // The same keys read in place from the frame a name arrived in, between other bytes.
        const names = sets.map((labels) => encodeMetricName({ tenant, labels }));
        const frame = new Uint8Array(names.reduce((a, n) => a + n.length + 3, 3)).fill(0xff);
        let pos = 3;
        names.forEach((n, i) => {
          frame.set(n, pos);
          expect(labelsSortKeyAt(frame, pos, pos + n.length, at(i))).toBe(keys[i]);
          pos += n.length + 3;
        });
        const byIndex = new Map(sets.map((labels, i) => [at(i), labels]));
        const got = [...keys].sort().map((k) => JSON.stringify(byIndex.get(sortKeyIndex(k))));
        expect(got).toEqual([...sets].sort(compareLabels).map((l) => JSON.stringify(l)));
      }),
      { numRuns: 500 },
    );
  });

  it("has no key for a zero byte inside a label, or invalid UTF-8", () => {
    expect(labelsSortKey(encodeMetricName({ tenant, labels: [{ name: "a", value: "x\u0000y" }] }))).toBeUndefined();
    const bad = new Uint8Array([0, 0, 0, 3, 0, 0, 0, 0, 1, 0x61, 1, 0xff]);
    expect(labelsSortKey(bad)).toBeUndefined();
    expect(labelsSortKey(encodeMetricName({ tenant, labels: [{ name: "a", value: "b" }] }))).toBe("a\u0000b\u0000");
  });

  it("a stream sorts keyed entries, and a stream with an unkeyed one, by their labels", () => {
    const sets = [[{ name: "a", value: "\u{10000}" }], [{ name: "a", value: "\u{e000}" }], [{ name: "a", value: "x\u0000" }], [{ name: "a", value: "b" }], [{ name: "a", value: "b" }, { name: "c", value: "d" }]];
    const want = [...sets].sort(compareLabels);
    const entriesOf = (of: Labels[]): StreamEntry[] => of.map((labels, i) => ({ labels, first: -1, samples: 0, sortKey: labelsSortKey(encodeMetricName({ tenant, labels }), i) }));
    expect(new BlockSeriesStream(entriesOf(sets), new BlockRefs(), 0, 1, 0, undefined, []).labels).toEqual(want);
    const keyed = sets.filter((l) => l[0]!.value !== "x\u0000");
    expect(entriesOf(keyed).every((e) => e.sortKey !== undefined)).toBe(true);
    expect(new BlockSeriesStream(entriesOf(keyed), new BlockRefs(), 0, 1, 0, undefined, []).labels).toEqual(want.filter((l) => l[0]!.value !== "x\u0000"));
  });
});
