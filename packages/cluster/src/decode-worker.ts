import { parentPort } from "node:worker_threads";
import { runRollupJob, type RollupJob, type RollupResult } from "./rollup-job.js";

/** Worker thread of DecodePool: decodes packed jobs, computes their rollups, transfers the step values back. */
const port = parentPort;
if (port === null) throw new Error("decode-worker.js runs as a worker thread (DecodePool)");
port.on("message", (job: RollupJob) => {
  try {
    const r = runRollupJob(job);
    port.postMessage(r, [r.index.buffer, r.values.buffer, r.present.buffer, r.got.buffer]);
  } catch (err) {
    const res: RollupResult = { id: job.id, error: err instanceof Error ? err.message : String(err) };
    port.postMessage(res);
  }
});
