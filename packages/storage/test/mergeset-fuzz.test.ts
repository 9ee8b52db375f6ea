import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StrataError, encodeMetricName } from "@strata/core";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { decodeBlock, decodeBlockV2 } from "../src/mergeset/block.js";
import { Table } from "../src/mergeset/index.js";
import { IndexDB } from "../src/indexdb/index.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "strata-mergeset-fuzz-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Only typed errors may escape: corrupt input is STRATA_CORRUPT_DATA, never a RangeError. */
function expectTyped(err: unknown): void {
  expect(err).toBeInstanceOf(StrataError);
  expect((err as StrataError).code).toBe("STRATA_CORRUPT_DATA");
}

describe("mergeset fuzz", () => {
  it.each([
    ["decodeBlock (format 1)", decodeBlock],
    ["decodeBlockV2", decodeBlockV2],
  ])("%s on random payloads only throws typed errors", (_name, decode) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 200 }), (raw, count, bytes) => {
        try {
          const b = decode(raw, count, bytes);
          expect(b.n).toBe(count);
          expect(b.offs[count]).toBe(bytes);
        } catch (err) {
          expectTyped(err);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("a part with mutated or truncated files opens and reads correctly or fails with a typed error", async () => {
    const base = path.join(root, "base");
    const t = await Table.open(base, { blockSize: 512, flushIntervalMs: 0, bloomNamespace: 0x01 });
    const want: string[] = [];
    for (let i = 0; i < 400; i++) {
      const it = Buffer.from(`\u0001${String(i * 7919).padStart(8, "0")}item-${i % 13}-${i}`);
      t.add(it);
      want.push(it.toString("hex"));
    }
    await t.close();
    want.sort();
    const [part] = fs.readdirSync(path.join(base, "parts"));
    const files = fs.readdirSync(path.join(base, "parts", part!));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...files, "parts.json"),
        fc.oneof(
          fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
          fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
          fc.record({ kind: fc.constant("garbage" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
        ),
        async (file, mut) => {
          const dir = path.join(root, `m${n++}`);
          fs.cpSync(base, dir, { recursive: true });
          const f = file === "parts.json" ? path.join(dir, file) : path.join(dir, "parts", part!, file);
          const b = fs.readFileSync(f);
          const at = b.length === 0 ? 0 : mut.at % b.length;
          let out: Buffer;
          if (mut.kind === "flip") {
            out = Buffer.from(b);
            if (out.length > 0) out[at]! ^= 1 << mut.bit;
          } else if (mut.kind === "truncate") out = b.subarray(0, at);
          else out = Buffer.concat([b.subarray(0, at), Buffer.from(mut.bytes), b.subarray(at + mut.bytes.length)]);
          fs.writeFileSync(f, out);
          let table: Table | undefined;
          try {
            table = await Table.open(dir, { flushIntervalMs: 0 });
            const snap = table.snapshot();
            const c = snap.cursor();
            c.seek(new Uint8Array(0));
            const got: string[] = [];
            while (c.next()) got.push(Buffer.from(c.item).toString("hex"));
            snap.release();
            // whatever survived checksums must be the original data (metadata.json hex fields are informational)
            if (got.length > 0) expect(got).toEqual(want);
          } catch (err) {
            if (file === "parts.json" && !(err instanceof StrataError)) throw err;
            expectTyped(err);
          } finally {
            await table?.close().catch(() => undefined);
            fs.rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("getOrCreateTSID on random bytes creates a series or throws a typed error", async () => {
    const db = await IndexDB.open(path.join(root, "idx"), { flushIntervalMs: 0 });
    try {
      const valid = encodeMetricName({ tenant: { accountID: 1, projectID: 2 }, labels: [{ name: "__name__", value: "x" }] });
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(), (noise, at) => {
          const b = Buffer.concat([valid.subarray(0, at % (valid.length + 1)), noise]);
          try {
            const t = db.getOrCreateTSID(new Uint8Array(b), 20_000);
            expect(db.getOrCreateTSID(new Uint8Array(b), 20_000)).toEqual(t);
          } catch (err) {
            expectTyped(err);
          }
        }),
        { numRuns: 500 },
      );
    } finally {
      await db.close();
    }
  });
});
