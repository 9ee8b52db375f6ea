import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { snappyDecode, snappyEncode } from "@strata/protocol";
import { DurableQueue, mergeSnappyBlocks, retryAfter } from "@strata/scrape";
import { repoRoot, tempDir } from "../../../test/lib/procs.js";

const block = (i: number, size = 100): Uint8Array => {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
};
const ids = (q: DurableQueue, max = 1 << 30): number[] => q.peek(max).map((b) => Buffer.from(b.data).readUInt32LE(0));

describe("durable queue", () => {
  const dirs: { remove(): void }[] = [];
  const dir = (): string => {
    const d = tempDir("queue");
    dirs.push(d);
    return d.path;
  };
  afterAll(() => dirs.forEach((d) => d.remove()));

  it("keeps blocks in order across reopen; acked blocks are not read again", () => {
    const d = dir();
    let q = new DurableQueue({ dir: d, maxBytes: 0, fsyncIntervalMs: 0 });
    for (let i = 0; i < 10; i++) q.append(block(i));
    const first = q.peek(350);
    expect(first.map((b) => Buffer.from(b.data).readUInt32LE(0))).toEqual([0, 1, 2]);
    q.ack(first[2]!.next);
    q.close();
    q = new DurableQueue({ dir: d, maxBytes: 0, fsyncIntervalMs: 0 });
    expect(ids(q)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(q.pendingBytes).toBe(7 * 108);
    // Read into a lent buffer (grown from too small, then reused): the same blocks, the same bytes.
    const scratch = { buf: Buffer.alloc(8) };
    for (let i = 0; i < 2; i++) {
      const got = q.peek(1 << 30, scratch);
      expect(got.map((b) => [b.next, Buffer.from(b.data).toString("hex")])).toEqual(q.peek(1 << 30).map((b) => [b.next, Buffer.from(b.data).toString("hex")]));
    }
    q.close();
  });

  it("cuts a torn block at the end (a write cut short by a crash) and keeps the rest", () => {
    const d = dir();
    const q = new DurableQueue({ dir: d, maxBytes: 0, fsyncIntervalMs: 0 });
    for (let i = 0; i < 3; i++) q.append(block(i));
    q.close();
    const seg = readdirSync(d).find((f) => f.endsWith(".seg"))!;
    appendFileSync(join(d, seg), Buffer.from([50, 0, 0, 0, 1, 2, 3, 4, 9, 9]));
    const q2 = new DurableQueue({ dir: d, maxBytes: 0, fsyncIntervalMs: 0 });
    expect(q2.tornBytes).toBe(10);
    expect(ids(q2)).toEqual([0, 1, 2]);
    q2.append(block(3));
    expect(ids(q2)).toEqual([0, 1, 2, 3]);
    q2.close();
  });

  it("drops the oldest segments past maxBytes and counts what it dropped", () => {
    const d = dir();
    const q = new DurableQueue({ dir: d, maxBytes: 256 * 1024, segmentBytes: 64 * 1024, fsyncIntervalMs: 0 });
    for (let i = 0; i < 100; i++) q.append(block(i, 10_000));
    expect(q.diskBytes).toBeLessThanOrEqual(256 * 1024);
    const kept = ids(q);
    expect(kept[kept.length - 1]).toBe(99);
    expect(q.droppedBlocks).toBe(100 - kept.length);
    expect(q.droppedBytes).toBe(q.droppedBlocks * 10_000);
    const onDisk = readdirSync(d).filter((f) => f.endsWith(".seg")).reduce((a, f) => a + statSync(join(d, f)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(256 * 1024);
    q.close();
  });

  it("deletes segments once every block in them is acknowledged", () => {
    const d = dir();
    const q = new DurableQueue({ dir: d, maxBytes: 0, segmentBytes: 64 * 1024, fsyncIntervalMs: 0 });
    for (let i = 0; i < 30; i++) q.append(block(i, 10_000));
    expect(readdirSync(d).filter((f) => f.endsWith(".seg")).length).toBeGreaterThan(3);
    const all = q.peek(1 << 30);
    q.ack(all[all.length - 1]!.next);
    expect(readdirSync(d).filter((f) => f.endsWith(".seg")).length).toBe(1);
    expect(q.pendingBytes).toBe(0);
    q.close();
  });

  it("every block whose append returned survives SIGKILL of the writing process", async () => {
    const d = dir();
    const dist = join(repoRoot, "packages", "scrape", "dist", "index.js");
    if (!existsSync(dist)) throw new Error("packages/scrape is not built: run pnpm build first");
    // The child appends numbered blocks and reports each one after append returned; it is
    // killed mid-stream, without any chance to flush or close.
    const script = `
      const { DurableQueue } = await import(${JSON.stringify(dist)});
      const q = new DurableQueue({ dir: ${JSON.stringify(d)}, maxBytes: 0, fsyncIntervalMs: 1000, segmentBytes: 256 * 1024 });
      for (let i = 0; ; i++) {
        const b = Buffer.alloc(3000 + (i % 7) * 1000, i & 0xff);
        b.writeUInt32LE(i, 0);
        q.append(b);
        process.stdout.write(i + "\\n");
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (out.split("\n").length > 3000) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const reported = out.split("\n").filter((l) => l !== "").map(Number);
    const q = new DurableQueue({ dir: d, maxBytes: 0, fsyncIntervalMs: 0 });
    const got = ids(q);
    expect(got.slice(0, reported.length)).toEqual(reported);
    q.close();
  });

  it.each([
    ["120", 120_000],
    ["0", 0],
    ["", undefined],
    ["soon", undefined],
    ["99999", 600_000],
  ])("Retry-After %j → %s ms", (v, want) => {
    expect(retryAfter(v)).toBe(want);
  });

  it("snappy blocks merge into one block of the concatenation, without recompressing", () => {
    const parts = [Buffer.from("abcabcabcabc".repeat(50)), Buffer.alloc(0), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) & 0xff)), Buffer.from("tail tail tail")];
    const merged = mergeSnappyBlocks(parts.map((p) => snappyEncode(p)));
    expect(Buffer.from(snappyDecode(merged, 1 << 20)).equals(Buffer.concat(parts))).toBe(true);
    // Into a reused buffer (too small at first: it grows), twice: the same bytes.
    const scratch = { buf: Buffer.alloc(16) };
    for (let i = 0; i < 2; i++) expect(Buffer.from(mergeSnappyBlocks(parts.map((p) => snappyEncode(p)), scratch)).equals(Buffer.from(merged))).toBe(true);
    expect(scratch.buf.length).toBeGreaterThanOrEqual(merged.length);
  });
});
