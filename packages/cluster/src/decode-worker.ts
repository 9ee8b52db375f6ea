import { parentPort } from "node:worker_threads";
import { runFoldControl, runRollupJob, type FoldControl, type RollupJob, type RollupResult } from "./rollup-job.js";

/**
 * Worker thread of DecodePool: decodes packed jobs, computes their rollups (and folds them when
 * the job says so), transfers the step values or the folded groups back.
 */
const port = parentPort;
if (port === null) throw new Error("decode-worker.js runs as a worker thread (DecodePool)");
port.on("message", (msg: RollupJob | FoldControl) => {
  try {
    if ("control" in msg) {
      const { result, transfer } = runFoldControl(msg);
      if (msg.control === "finish") port.postMessage(result, transfer);
      return;
    }
    const r = runRollupJob(msg);
    // The job's buffer goes back with the result: the pool packs a later job into it.
    const reply: RollupResult = { ...r, spare: msg.data.buffer };
    port.postMessage(reply, [r.index.buffer, r.values.buffer, r.present.buffer, r.got.buffer, msg.data.buffer]);
  } catch (err) {
    const res: RollupResult = { id: msg.id, error: err instanceof Error ? err.message : String(err) };
    port.postMessage(res);
  }
});
