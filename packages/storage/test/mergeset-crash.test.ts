import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeMetricName } from "@strata/core";
import { afterAll, describe, expect, it } from "vitest";
import { IndexDB } from "../src/indexdb/index.js";
import { Table } from "../src/mergeset/index.js";

const CHILD = path.join(import.meta.dirname, "mergeset-crash.child.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface RunResult {
  acked: number; // items/series of this round acknowledged as flushed
  ids: number[]; // metricIDs printed (indexdb mode)
}

/** Runs the child until `killAfterAcks` acks arrived (+ a random extra delay), then SIGKILLs it. */
function runAndKill(mode: string, dir: string, round: number, killAfterAcks: number, extraMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ["--conditions=source", "--import", "tsx", CHILD, mode, dir, String(round)], {
      cwd: path.join(import.meta.dirname, "..", "..", ".."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const res: RunResult = { acked: 0, ids: [] };
    let acks = 0;
    let buf = "";
    let stderr = "";
    let killing = false;
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [kind, a, b] = line.split(" ");
        if (kind === "ACK" && Number(a) === round) {
          res.acked = Number(b);
          if (++acks >= killAfterAcks && !killing) {
            killing = true;
            setTimeout(() => child.kill("SIGKILL"), extraMs);
          }
        } else if (kind === "ID") res.ids.push(Number(a));
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (_code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`child exited on its own (${String(signal)}): ${stderr}`));
      else if (acks === 0) reject(new Error(`child never acknowledged: ${stderr}`));
      else resolve(res);
    });
  });
}

function scanAll(t: Table): string[] {
  const snap = t.snapshot();
  try {
    const c = snap.cursor();
    c.seek(new Uint8Array(0));
    const out: string[] = [];
    while (c.next()) out.push(Buffer.from(c.item).toString());
    return out;
  } finally {
    snap.release();
  }
}

describe("crash safety (SIGKILL)", () => {
  it("mergeset: every flushed item survives, nothing is corrupt, leftovers are cleaned", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-mergeset-crash-"));
    dirs.push(dir);
    const acked: number[] = [];
    for (let round = 0; round < 3; round++) {
      const r = await runAndKill("mergeset", dir, round, 3 + round * 5, Math.floor(Math.random() * 40));
      acked.push(r.acked);
      const t = await Table.open(dir, { flushIntervalMs: 0 });
      try {
        const items = scanAll(t);
        const set = new Set(items);
        for (let rr = 0; rr <= round; rr++) {
          for (let n = 0; n < acked[rr]!; n++) expect(set.has(`${rr}:${String(n).padStart(7, "0")}`)).toBe(true);
        }
        for (const it of items) expect(it).toMatch(/^\d+:\d{7}$/);
        expect(fs.readdirSync(path.join(dir, "tmp"))).toEqual([]);
        const listed = (JSON.parse(fs.readFileSync(path.join(dir, "parts.json"), "utf8")) as { parts: string[] }).parts;
        expect(fs.readdirSync(path.join(dir, "parts")).sort()).toEqual([...listed].sort());
      } finally {
        await t.close();
      }
    }
  });

  it("indexdb: flushed series keep their TSIDs and metricIDs are never reused after a crash", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-indexdb-crash-"));
    dirs.push(dir);
    let maxSeen = 0;
    const acked: number[] = [];
    for (let round = 0; round < 3; round++) {
      const r = await runAndKill("indexdb", dir, round, 2 + round * 3, Math.floor(Math.random() * 30));
      acked.push(r.acked);
      const db = await IndexDB.open(dir, { flushIntervalMs: 0 });
      try {
        for (let rr = 0; rr <= round; rr++) {
          for (let n = 0; n < acked[rr]!; n += 7) {
            const name = encodeMetricName({
              tenant: { accountID: rr % 2, projectID: 0 },
              labels: [
                { name: "__name__", value: `m${n % 5}` },
                { name: "n", value: `${rr}:${n}` },
              ],
            });
            const before = db.metrics().series_created_total;
            db.getOrCreateTSID(name, 20_000 + (n % 3));
            expect(db.metrics().series_created_total).toBe(before); // found, not re-created
          }
        }
        // every id handed out before the crash (durable or not) is below the next one
        for (const id of r.ids) maxSeen = Math.max(maxSeen, id);
        const fresh = db.getOrCreateTSID(
          encodeMetricName({ tenant: { accountID: 9, projectID: 9 }, labels: [{ name: "__name__", value: `probe${round}` }] }),
          20_000,
        );
        expect(fresh.metricID).toBeGreaterThan(maxSeen);
        maxSeen = fresh.metricID;
        await db.flush();
      } finally {
        await db.close();
      }
    }
  });
});
