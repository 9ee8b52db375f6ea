/**
 * PromQL parser throughput: parses (and prints) every eval expression of the conformance
 * scripts in ../shared/conformance/promql, plus a few large generated queries.
 *
 *   pnpm bench:promql-parser
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseExpr, parseScript, printExpr } from "../src/index.js";

const dir = resolve(import.meta.dirname, "../../../../shared/conformance/promql");
const queries: string[] = [];
for (const f of readdirSync(dir).filter((x) => x.endsWith(".test"))) {
  for (const c of parseScript(readFileSync(join(dir, f), "utf8"), f)) if (c.kind === "eval") queries.push(c.query);
}
const bytes = queries.reduce((n, q) => n + Buffer.byteLength(q), 0);

function bench(name: string, qs: readonly string[], qBytes: number, fn: (q: string) => void, minMs = 1500): void {
  for (const q of qs) fn(q); // warm up
  let rounds = 0;
  const t0 = performance.now();
  let el = 0;
  do {
    for (const q of qs) fn(q);
    rounds++;
    el = performance.now() - t0;
  } while (el < minMs);
  const perQuery = (el * 1e3) / (rounds * qs.length);
  console.log(
    `${name.padEnd(34)} ${String(qs.length).padStart(5)} queries  ${perQuery.toFixed(2).padStart(8)} µs/query  ${((rounds * qs.length) / (el / 1000)).toFixed(0).padStart(8)} queries/s  ${((rounds * qBytes) / 1e6 / (el / 1000)).toFixed(1).padStart(6)} MB/s`,
  );
}

bench("parse conformance queries", queries, bytes, (q) => void parseExpr(q));
const parsed = queries.map(parseExpr);
let i = 0;
bench("print conformance queries", queries, bytes, () => void printExpr(parsed[i++ % parsed.length]!));

// A wide query: a sum of 200 selectors with matchers, and a deeply nested one.
const wide = Array.from({ length: 200 }, (_, k) => `rate(http_requests_total{job="api-${k}", code=~"5.."}[5m])`).join(" + ");
bench("wide query (200 terms, 15 KB)", [wide], Buffer.byteLength(wide), (q) => void parseExpr(q));
const deep = "(".repeat(500) + "sum by (a) (x)" + ")".repeat(500);
bench("deep query (500 nested parens)", [deep], Buffer.byteLength(deep), (q) => void parseExpr(q));
