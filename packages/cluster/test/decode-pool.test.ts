import { describe, expect, it } from "vitest";
import { InternalError } from "@strata/core";
import { marshalBlockAt, marshaledBlockSize, type RawBlock } from "@strata/storage";
import { BlockRefs } from "../src/block-refs.js";
import { DecodePool } from "../src/decode-pool.js";
import type { RollupSpec } from "@strata/promql";

/**
 * Workers start when a job needs them and exit after idleMs without one. A decode worker that dies fails the query whose jobs it held with a clear error, and the pool
 * replaces it so later queries still find every worker; close() (select's SIGTERM) ends them.
 */

const block = (t: number): RawBlock => ({
  tsid: { accountID: 0, projectID: 0, metricGroupID: 0, jobInstanceID: 0, metricID: 1 },
  count: 1,
  minT: t,
  maxT: t,
  tsTag: 0,
  valTag: 0,
  timestamps: new Uint8Array(0),
  values: new Uint8Array(0),
});

/** A block's wire form, as select holds it off the storage stream. */
const wire = (t: number): Uint8Array => {
  const b = block(t);
  const out = new Uint8Array(marshaledBlockSize(b));
  marshalBlockAt(b, out, 0);
  return out;
};

/** pool.rollupJobs over series given as their blocks' wire forms. */
const rollupJobs = (pool: DecodePool, series: Uint8Array[][], samples: number[], spec: RollupSpec) => {
  const { refs, firsts } = BlockRefs.ofWire(series);
  return pool.rollupJobs(refs, firsts, samples, 0, 60_000, 0, spec);
};

describe("DecodePool", () => {
  it("fails the jobs of a worker that exits, names the exit, and replaces the worker", async () => {
    const pool = new DecodePool({ workers: 2, minSamples: 1, workerUrl: new URL("./fixtures/exit-worker.mjs", import.meta.url) });
    try {
      const spec = { func: "rate", ends: new Float64Array([60_000]), range: 60_000 };
      for (let round = 1; round <= 2; round++) {
        const jobs = rollupJobs(pool, [[wire(1000)], [wire(2000)]], [1, 1], spec);
        expect(jobs).toHaveLength(2);
        for (const r of await Promise.allSettled(jobs.map((j) => j.result))) {
          expect(r.status).toBe("rejected");
          const err: unknown = r.status === "rejected" ? r.reason : undefined;
          expect(err).toBeInstanceOf(InternalError);
          expect((err as Error).message).toMatch(/decode worker failed: exited with code 7/);
        }
        // Both dead workers were replaced: the pool keeps its size for the next query.
        expect(pool.size).toBe(2);
        expect(pool.restarts).toBe(2 * round);
      }
    } finally {
      await pool.close();
    }
    await expect(rollupJobs(pool, [[wire(1000)]], [1], { func: "rate", ends: new Float64Array(1), range: 1 })[0]!.result).rejects.toThrow(/closed/);
  });

  it("starts workers on the first job, no more than the jobs need, and ends idle ones", async () => {
    const workerUrl = new URL("./fixtures/echo-worker.mjs", import.meta.url);
    const spec = { func: "rate", ends: new Float64Array([60_000]), range: 60_000 };
    const run = (pool: DecodePool, series: number) => Promise.all(rollupJobs(pool, Array.from({ length: series }, (_, i) => [wire(1000 * (i + 1))]), new Array<number>(series).fill(1), spec).map((j) => j.result));
    const lasting = new DecodePool({ workers: 2, minSamples: 1, idleMs: 0, workerUrl });
    try {
      expect(lasting.running).toBe(0);
      // One job: one worker; the next job goes to it while it is idle.
      await run(lasting, 1);
      await run(lasting, 1);
      expect([lasting.running, lasting.starts]).toEqual([1, 1]);
      // Two jobs at once: the second starts the second worker.
      await run(lasting, 2);
      expect([lasting.running, lasting.starts, lasting.restarts]).toEqual([2, 2, 0]);
    } finally {
      await lasting.close();
    }
    expect(lasting.running).toBe(0);
    const brief = new DecodePool({ workers: 2, minSamples: 1, idleMs: 50, workerUrl });
    try {
      await run(brief, 2);
      // Idle workers exit (not a failure), and the next job starts one again.
      await until(() => brief.running === 0);
      expect(brief.restarts).toBe(0);
      await run(brief, 1);
      expect(brief.starts).toBe(3);
      await until(() => brief.running === 0);
    } finally {
      await brief.close();
    }
  });

  it("packs a later job into the buffer a worker handed back, with only its own bytes", async () => {
    const pool = new DecodePool({ workers: 1, minSamples: 1, workerUrl: new URL("./fixtures/spare-worker.mjs", import.meta.url) });
    try {
      const spec = { func: "rate", ends: new Float64Array([60_000]), range: 60_000 };
      const big = Array.from({ length: 50 }, (_, i) => [wire(1000 * (i + 1))]);
      const small = [[wire(7000)], [wire(8000)]];
      const run = async (series: Uint8Array[][]) => (await rollupJobs(pool, series, series.map(() => 1), spec)[0]!.result) as unknown as { got: Uint8Array; bufferBytes: number };
      const first = await run(big);
      expect(pool.buffersReused).toBe(0);
      const second = await run(small);
      expect(pool.buffersReused).toBe(1);
      // The same (larger) buffer, and the job's data is exactly its own blocks.
      expect(second.bufferBytes).toBe(first.bufferBytes);
      expect(Array.from(second.got)).toEqual([...small[0]![0]!, ...small[1]![0]!]);
      expect(Array.from(first.got)).toEqual(big.flatMap((s) => Array.from(s[0]!)));
    } finally {
      await pool.close();
    }
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}
