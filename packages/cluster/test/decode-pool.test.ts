import { describe, expect, it } from "vitest";
import { InternalError } from "@strata/core";
import { marshalBlockAt, marshaledBlockSize, type RawBlock } from "@strata/storage";
import { DecodePool } from "../src/decode-pool.js";

/**
 * A decode worker that dies fails the query whose jobs it held with a clear error, and the pool
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

describe("DecodePool", () => {
  it("fails the jobs of a worker that exits, names the exit, and replaces the worker", async () => {
    const pool = new DecodePool({ workers: 2, minSamples: 1, workerUrl: new URL("./fixtures/exit-worker.mjs", import.meta.url) });
    try {
      const spec = { func: "rate", ends: new Float64Array([60_000]), range: 60_000 };
      for (let round = 1; round <= 2; round++) {
        const jobs = pool.rollupJobs([[wire(1000)], [wire(2000)]], [1, 1], 0, 60_000, 0, spec);
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
    await expect(pool.rollupJobs([[wire(1000)]], [1], 0, 60_000, 0, { func: "rate", ends: new Float64Array(1), range: 1 })[0]!.result).rejects.toThrow(/closed/);
  });
});
