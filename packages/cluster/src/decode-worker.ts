import { parentPort } from "node:worker_threads";
import { runJob, type DecodeJob, type DecodeResult } from "./decode.js";
import { isRollupJob, runRollupJob, type RollupResult } from "./rollup-job.js";

/**
 * Worker thread of DecodePool: decodes packed jobs (and computes rollups over them) and
 * transfers the results back.
 */
const port = parentPort;
if (port === null) throw new Error("decode-worker.js runs as a worker thread (DecodePool)");
port.on("message", (job: DecodeJob) => {
  try {
    if (isRollupJob(job)) {
      const r = runRollupJob(job);
      port.postMessage(r, [r.index.buffer, r.values.buffer, r.present.buffer, r.got.buffer]);
      return;
    }
    const r = runJob(job);
    port.postMessage(r, [r.timestamps.buffer, r.values.buffer, r.windows.buffer]);
  } catch (err) {
    const res: DecodeResult & RollupResult = { id: job.id, error: err instanceof Error ? err.message : String(err) };
    port.postMessage(res);
  }
});
