/**
 * Child process of mergeset-crash.test.ts: writes items (or index series) forever, printing
 * what is durable, until the parent SIGKILLs it.
 *   mergeset mode: `ACK <round> <n>` once items `<round>:0 … <round>:n-1` are flushed.
 *   indexdb mode:  `ID <metricID>` for every metricID handed out (flushed or not) and
 *                  `ACK <round> <n>` once series `<round>:0 … n-1` are flushed.
 */
import { encodeMetricName } from "@strata/core";
import { IndexDB } from "../src/indexdb/index.js";
import { Table } from "../src/mergeset/index.js";

const [mode, dir, roundStr] = process.argv.slice(2);
const round = Number(roundStr);
const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

async function mergeset(): Promise<void> {
  const t = await Table.open(dir!, { maxPendingItems: 50, maxInMemoryParts: 3, blockSize: 256, flushIntervalMs: 0, mergeFanIn: 4 });
  let n = 0;
  for (let batch = 0; ; batch++) {
    const size = 1 + ((batch * 37) % 200);
    for (let i = 0; i < size; i++, n++) t.add(Buffer.from(`${round}:${String(n).padStart(7, "0")}`));
    await t.flush();
    out(`ACK ${round} ${n}`);
    if (batch % 7 === 6) void t.forceMerge().catch(() => undefined);
  }
}

async function indexdb(): Promise<void> {
  const db = await IndexDB.open(dir!, { flushIntervalMs: 0, idReserve: 16, table: { maxPendingItems: 200, blockSize: 512 } });
  let n = 0;
  for (let batch = 0; ; batch++) {
    for (let i = 0; i < 25; i++, n++) {
      const name = encodeMetricName({
        tenant: { accountID: round % 2, projectID: 0 },
        labels: [
          { name: "__name__", value: `m${n % 5}` },
          { name: "n", value: `${round}:${n}` },
        ],
      });
      out(`ID ${db.getOrCreateTSID(name, 20_000 + (n % 3)).metricID}`);
    }
    await db.flush();
    out(`ACK ${round} ${n}`);
    if (batch % 5 === 4) void db.forceMerge().catch(() => undefined);
  }
}

await (mode === "indexdb" ? indexdb() : mergeset());
