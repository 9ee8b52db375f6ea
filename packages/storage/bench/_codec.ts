import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { brotliCompressSync, deflateRawSync, constants as Z } from "node:zlib";
import { encodeMetricName, labelsFromRecord } from "@strata/core";
import { lz4Compress } from "@strata/encoding";
import { IndexDB } from "../src/indexdb/index.js";
import { FilePart, newBlockCache } from "../src/mergeset/part.js";
import { encodeBlockV2 } from "../src/mergeset/block.js";
import { ByteBuffer } from "../src/bytes.js";
const N = 50000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cb-codec-"));
function rec(i: number): Record<string, string> {
  const metric = i % 100; const host = Math.floor(i / 100) % Math.max(1, Math.floor(N / 1000));
  const r: Record<string, string> = { __name__: `node_metric_${metric}_total`, job: "node", instance: `host-${host}.example.org:9100`, env: ["prod", "staging", "dev"][host % 3]!, dc: `dc${host % 7}` };
  if (metric < 20) r.cpu = String(Math.floor(i / 100 / Math.max(1, N / 1000)) % 64);
  r.i = String(Math.floor(i / 100));
  return r;
}
const db = await IndexDB.open(dir, { flushIntervalMs: 0 });
for (let i = 0; i < N; i++) db.getOrCreateTSID(encodeMetricName({ tenant: { accountID: 0, projectID: 0 }, labels: labelsFromRecord(rec(i)) }), 20000);
await db.flush();
await db.close();
const pd = path.join(dir, "table", "parts");
const payloads: Uint8Array[] = [];
for (const name of fs.readdirSync(pd)) {
  const p = FilePart.open(path.join(pd, name), newBlockCache(1 << 20));
  for (let i = 0; i < p.blocksCount; i++) {
    const b = p.blockUncached(i); const out = new ByteBuffer(1 << 15);
    encodeBlockV2(b.data, b.offs, b.n, out); payloads.push(out.view().slice());
  }
}
let raw = 0; for (const p of payloads) raw += p.length;
console.log(`${payloads.length} blocks, ${(raw / N).toFixed(1)} payload bytes/series`);
const codecs: [string, (p: Uint8Array) => Uint8Array][] = [
  ["brotli q0", (p) => brotliCompressSync(p, { params: { [Z.BROTLI_PARAM_QUALITY]: 0, [Z.BROTLI_PARAM_SIZE_HINT]: p.length } })],
  ["brotli q1", (p) => brotliCompressSync(p, { params: { [Z.BROTLI_PARAM_QUALITY]: 1, [Z.BROTLI_PARAM_SIZE_HINT]: p.length } })],
  ["brotli q2", (p) => brotliCompressSync(p, { params: { [Z.BROTLI_PARAM_QUALITY]: 2, [Z.BROTLI_PARAM_SIZE_HINT]: p.length } })],
  ["brotli q4", (p) => brotliCompressSync(p, { params: { [Z.BROTLI_PARAM_QUALITY]: 4, [Z.BROTLI_PARAM_SIZE_HINT]: p.length } })],
  ["deflate 1", (p) => deflateRawSync(p, { level: 1 })],
  ["lz4", (p) => lz4Compress(p)],
  ["encode only", (p) => p],
];
for (let rep = 0; rep < 2; rep++) for (const [n, f] of codecs) {
  const c = process.cpuUsage(); let out = 0;
  for (const p of payloads) out += f(p).length;
  const u = process.cpuUsage(c);
  console.log(`${n.padEnd(10)} ${(out / N).toFixed(1)} bytes/series, ${((u.user + u.system) / N).toFixed(2)} cpu-µs/series`);
}
fs.rmSync(dir, { recursive: true, force: true });
