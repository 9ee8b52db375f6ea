import { parentPort } from "node:worker_threads";
import { runJob, type DecodeJob, type DecodeResult } from "./decode.js";

/** Worker thread of DecodePool: decodes packed jobs and transfers the samples back. */
const port = parentPort;
if (port === null) throw new Error("decode-worker.js runs as a worker thread (DecodePool)");
port.on("message", (job: DecodeJob) => {
  try {
    const r = runJob(job);
    port.postMessage(r, [r.timestamps.buffer, r.values.buffer, r.windows.buffer]);
  } catch (err) {
    const res: DecodeResult = { id: job.id, error: err instanceof Error ? err.message : String(err) };
    port.postMessage(res);
  }
});
