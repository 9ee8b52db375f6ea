import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryQuerier, createEngine, parseScript, runScript, type EvalCommand, type EvalOutcome, type ScriptTarget } from "@strata/promql";

// Prometheus' PromQL conformance scripts, read at test time from the `shared` directory that
// sits beside the repository (never copied into it).
const repoRoot = resolve(import.meta.dirname, "../../..");
const dir = resolve(repoRoot, "../shared/conformance/promql");
const skipFile = join(import.meta.dirname, "conformance-skip.txt");

/** `file:line reason` per line; `#` comments. */
function loadSkipList(): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(skipFile)) return m;
  for (const raw of readFileSync(skipFile, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.indexOf(" ");
    const id = sp < 0 ? line : line.slice(0, sp);
    m.set(id, sp < 0 ? "" : line.slice(sp + 1).trim());
  }
  return m;
}

const skip = loadSkipList();
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".test")).sort() : [];
const counts = { passed: 0, failed: 0, skipped: 0, nowPassing: 0 };

function memoryTarget(): ScriptTarget {
  const engine = createEngine();
  // Two series per streamed batch: aggregations cross batch boundaries in every script.
  const querier = new MemoryQuerier({ streamBatchSeries: 2 });
  return {
    clear: () => querier.clear(),
    load: (labels, ts, vs) => querier.add(labels, ts, vs),
    instantQuery: (q, t) => engine.instantQuery(querier, q, t),
    rangeQuery: (q, s, e, st) => engine.rangeQuery(querier, q, s, e, st),
  };
}

it("finds the conformance scripts", () => {
  expect(files.length, `no .test files in ${dir}`).toBeGreaterThan(0);
});

for (const file of files) {
  describe(file, () => {
    const cmds = parseScript(readFileSync(join(dir, file), "utf8"), file);
    const evals = cmds.filter((c): c is EvalCommand => c.kind === "eval");
    const outcomes = new Map<number, EvalOutcome>();
    beforeAll(async () => {
      for (const o of await runScript(memoryTarget(), cmds)) outcomes.set(o.line, o);
    }, 600_000);

    it.for(evals.map((e) => [`${file}:${e.line}`, e] as const))("%s", ([id, e], ctx) => {
      const o = outcomes.get(e.line);
      expect(o, `${id} did not run`).toBeDefined();
      const reason = skip.get(id);
      if (reason !== undefined) {
        if (o!.passed) {
          counts.nowPassing++;
          expect.fail(`${id} passes now: remove it from test/conformance-skip.txt (${reason})`);
        }
        counts.skipped++;
        ctx.skip(reason);
        return;
      }
      if (o!.passed) counts.passed++;
      else counts.failed++;
      expect(o!.error, `${id}: ${e.query}`).toBeUndefined();
    });
  });
}

afterAll(() => {
  const ids = new Set(files.flatMap((f) => parseScript(readFileSync(join(dir, f), "utf8"), f).filter((c) => c.kind === "eval").map((c) => `${f}:${c.line}`)));
  const stale = [...skip.keys()].filter((k) => !ids.has(k));
  console.log(
    `PromQL conformance: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (skip list), ${counts.nowPassing} skip-listed now passing; ${stale.length} skip entries match no case`,
  );
  if (stale.length > 0) console.log(`skip entries that match no eval case: ${stale.join(", ")}`);
});
