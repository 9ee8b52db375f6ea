/**
 * Runs Prometheus' PromQL conformance scripts (../shared/conformance/promql beside the repo)
 * against the engine over MemoryQuerier and prints pass/fail counts and every failure.
 *
 *   node --conditions=source --import tsx packages/promql/scripts/conformance-report.ts [file-prefix] [--write-skip]
 *
 * --write-skip rewrites test/conformance-skip.txt with one line per failing case and a reason:
 * "native histograms", "start timestamps (@st)" or "evaluator: <error>". Review the diff: the
 * list must only shrink over time.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MemoryQuerier, createEngine, parseScript, runScript, type EvalOutcome } from "../src/index.js";

const repoRoot = resolve(import.meta.dirname, "../../..");
const dir = resolve(repoRoot, "../shared/conformance/promql");
const args = process.argv.slice(2);
const writeSkip = args.includes("--write-skip");
const only = args.find((a) => !a.startsWith("--"));

function reason(o: EvalOutcome): string {
  if (o.nativeHistograms) return "native histograms";
  if (o.startTimestamps) return "start timestamps (@st series) not supported";
  const err = (o.error ?? "").replace(/\s+/g, " ");
  return `evaluator: ${err.length > 160 ? `${err.slice(0, 160)}…` : err}`;
}

let passed = 0;
const failures: { id: string; o: EvalOutcome }[] = [];
const t0 = performance.now();
for (const f of readdirSync(dir).filter((x) => x.endsWith(".test")).sort()) {
  if (only !== undefined && !f.startsWith(only)) continue;
  const engine = createEngine();
  const q = new MemoryQuerier();
  const outs = await runScript(
    {
      clear: () => q.clear(),
      load: (l, t, v) => q.add(l, t, v),
      instantQuery: (s, t) => engine.instantQuery(q, s, t),
      rangeQuery: (s, a, b, c) => engine.rangeQuery(q, s, a, b, c),
    },
    parseScript(readFileSync(join(dir, f), "utf8"), f),
  );
  for (const o of outs) {
    if (o.passed) passed++;
    else failures.push({ id: `${f}:${o.line}`, o });
  }
}
for (const { id, o } of failures) console.log(`${id}\t${reason(o).startsWith("evaluator") ? "" : `[${reason(o)}] `}${o.query}\n    ${o.error ?? ""}`);
const nh = failures.filter((x) => x.o.nativeHistograms).length;
const st = failures.filter((x) => !x.o.nativeHistograms && x.o.startTimestamps).length;
console.log(
  `\n${passed} passed, ${failures.length} failed (${nh} native histograms, ${st} start timestamps, ${failures.length - nh - st} other) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
if (writeSkip && only === undefined) {
  const header = [
    "# PromQL conformance cases that do not pass yet: `file:line reason`.",
    "# Read by test/conformance.test.ts; a listed case that passes fails the test (remove it).",
    "# Regenerate with: node --conditions=source --import tsx packages/promql/scripts/conformance-report.ts --write-skip",
    "# Goal: nothing but native histograms here.",
    "",
  ];
  writeFileSync(join(import.meta.dirname, "../test/conformance-skip.txt"), header.concat(failures.map(({ id, o }) => `${id} ${reason(o)}`)).join("\n") + "\n");
  console.log("wrote test/conformance-skip.txt");
}
