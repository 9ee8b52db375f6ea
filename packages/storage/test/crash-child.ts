/**
 * Child process of crash.test.ts: opens the store in argv[2], writes batch after batch with
 * aggressive flush/merge settings and prints `ACK <n>` after each addRows resolves. The parent
 * SIGKILLs it at a random moment. Batch n holds ROWS rows: series s=j%SERIES, t=T0+n*1000+j,
 * v=n*1000+j, so the parent can check every acknowledged row.
 */
import { DEFAULT_TENANT, RowsBatchWriter } from "@strata/core";
import { Storage } from "@strata/storage";
import { nameBytes } from "./helpers.js";

export const ROWS = 200;
export const SERIES = 50;

const dir = process.argv[2]!;
const T0 = Number(process.argv[3]);
let n = Number(process.argv[4]);

const s = await Storage.open(dir, {
  flushIntervalMs: 30,
  diskFlushIntervalMs: 120,
  walFsyncIntervalMs: 50,
  maxPartsPerPartition: 3,
  mergeFanIn: 3,
  walMaxSegmentBytes: 64 * 1024,
});
const names = Array.from({ length: SERIES }, (_, i) => nameBytes(DEFAULT_TENANT, { __name__: "crash", s: String(i) }));
const w = new RowsBatchWriter();
process.stdout.write("READY\n");
for (;;) {
  w.reset();
  for (let j = 0; j < ROWS; j++) w.add(names[j % SERIES]!, T0 + n * 1000 + j, n * 1000 + j);
  await s.addRows(w.view());
  process.stdout.write(`ACK ${n}\n`);
  n++;
  if (n % 5 === 0) await new Promise((r) => setTimeout(r, 2));
  if (n % 97 === 0) await s.forceMerge();
}
