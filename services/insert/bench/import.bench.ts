// pnpm bench:import — one large import body streamed into a real insert + storage: rows/s end
// to end, and insert's peak RSS, which must stay far below the body size (the body is parsed as a
// stream and spooled to a temp file until it parsed whole). Then the same body with a bad last
// line: 400, nothing stored, and how long the rejection took.
// STRATA_IMPORT_BENCH_MB (default 128) sets the body size. Requires `pnpm build`.
import { request } from "node:http";
import { readFileSync } from "node:fs";
import { assertBuilt, forceFlush, removeDir, searchNode, startInsert, startStorage } from "../test/cluster-harness.js";

const MB = Number(process.env["STRATA_IMPORT_BENCH_MB"] ?? 128);
const T = Math.floor(Date.now() / 1000 - 3600) * 1000;

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Streams `bytes` of text exposition (optionally ending with a bad line); resolves with status, body, rows. */
function postStream(url: string, bytes: number, badLast: boolean, metric: string): Promise<{ status: number; text: string; rows: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "text/plain" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, rows }));
    });
    req.on("error", reject);
    let sent = 0;
    let rows = 0;
    const write = (): void => {
      while (sent < bytes) {
        let chunk = "";
        for (let k = 0; k < 1000; k++, rows++) {
          chunk += `${metric}{instance="host-${rows % 1000}:9100",job="bench",shard="${rows % 50}"} ${(rows * 0.25) % 1000} ${T + Math.floor(rows / 1000) * 1000}\n`;
        }
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", write);
          return;
        }
      }
      req.end(badLast ? `${metric}{broken 1\n` : "");
    };
    write();
  });
}

assertBuilt();
const storage = await startStorage();
const ins = await startInsert([storage.insertAddr], ["-loggerLevel=ERROR", ...(process.env["STRATA_IMPORT_BENCH_FLAGS"] ?? "").split(" ").filter((f) => f !== "")]);
try {
  const url = `${ins.url}/insert/0/prometheus/api/v1/import/prometheus`;
  const rssBefore = peakRss(ins.proc.child.pid!);
  let t0 = performance.now();
  const ok = await postStream(url, MB * 2 ** 20, false, "bench_ok");
  const okS = (performance.now() - t0) / 1000;
  const rssOk = peakRss(ins.proc.child.pid!);
  t0 = performance.now();
  const bad = await postStream(url, MB * 2 ** 20, true, "bench_bad");
  const badS = (performance.now() - t0) / 1000;
  await forceFlush([storage]);
  const storedBad = (await searchNode(storage, { accountID: 0, projectID: 0 }, "bench_bad")).length;
  console.log(`import of ${MB} MiB Prometheus text (${ok.rows} rows), 1 insert + 1 storage on this machine:`);
  console.log(`  good body:   HTTP ${ok.status} in ${okS.toFixed(1)} s = ${(ok.rows / okS / 1000).toFixed(0)}k rows/s end to end (parse + spool + WAL ack)`);
  console.log(`  insert peak RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB at start → ${(rssOk / 2 ** 20).toFixed(0)} MiB after the ${MB} MiB import`);
  console.log(`  bad last line: HTTP ${bad.status} "${bad.text.trim()}" after ${badS.toFixed(1)} s; series stored from it: ${storedBad}`);
  console.log(`  insert peak RSS after both: ${(peakRss(ins.proc.child.pid!) / 2 ** 20).toFixed(0)} MiB`);
} finally {
  await ins.proc.stop();
  await storage.proc.stop();
  removeDir(storage.dir);
}
