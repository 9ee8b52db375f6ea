import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeMetricName, DEFAULT_TENANT, newMatcher } from "@strata/core";
import { mergeSeriesBlocks } from "@strata/storage";
import { openTestStorage, rmDir, tmpDir } from "./helpers.js";

const ROWS = 200;
const SERIES = 50;
const ROUNDS = 6;

interface RoundResult {
  acked: number[];
}

function runChild(dir: string, t0: number, startBatch: number, killAfterMs: number): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", join(import.meta.dirname, "crash-child.ts"), dir, String(t0), String(startBatch)], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: join(import.meta.dirname, ".."),
    });
    const acked: number[] = [];
    let buf = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === "READY" && timer === undefined) timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        else if (line.startsWith("ACK ")) acked.push(Number(line.slice(4)));
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`child exited ${code} ${signal}: ${stderr}`));
      else resolve({ acked });
    });
  });
}

describe("crash safety", () => {
  it("every acknowledged row survives SIGKILL at random moments (during flushes and merges)", { timeout: 90_000 }, async () => {
    const dir = tmpDir("strata-crash-");
    const t0 = Date.now() - 3_600_000;
    const acked = new Set<number>();
    let next = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const r = await runChild(dir, t0, next, 400 + Math.floor(Math.random() * 1600));
        for (const n of r.acked) acked.add(n);
        if (process.env.CRASH_DEBUG) console.log(`round ${round}: ${r.acked.length} batches acknowledged`);
        if (r.acked.length > 0) next = Math.max(next, r.acked[r.acked.length - 1]! + 1);
        // Reopen exactly what the killed process left: no repair step.
        const s = await openTestStorage(dir, { walFsyncIntervalMs: 1000 });
        try {
          await s.forceFlush();
          const have = new Map<number, number>();
          const c = s.search(DEFAULT_TENANT, [newMatcher("=", "__name__", "crash")], 0, t0 + 1e10);
          while (c.next()) {
            const series = c.at();
            const label = decodeMetricName(series.metricName).labels.find((l) => l.name === "s")!.value;
            const { timestamps, values } = mergeSeriesBlocks(series.blocks, c.minT, c.maxT);
            for (let i = 0; i < timestamps.length; i++) {
              have.set(timestamps[i]!, values[i]!);
              expect((timestamps[i]! - t0) % 1000 % SERIES).toBe(Number(label));
            }
          }
          for (const n of acked) {
            for (let j = 0; j < ROWS; j++) {
              const v = have.get(t0 + n * 1000 + j);
              if (v !== n * 1000 + j) throw new Error(`round ${round}: acknowledged row batch ${n} row ${j} is ${v}`);
            }
          }
          expect(s.metrics().background_errors_total).toBe(0);
        } finally {
          await s.close();
        }
      }
      expect(acked.size).toBeGreaterThan(ROUNDS);
    } finally {
      rmDir(dir);
    }
  });
});
