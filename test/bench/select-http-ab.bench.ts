// tsx test/bench/select-http-ab.bench.ts --old=<another build's services/select/dist/main.js> [--n=400]
//
// A/B of select's HTTP layer: this checkout's select and another build of it (e.g. a copy of
// main's tree before a change to the HTTP layer), both over the same two storage nodes holding
// 1000 series, requests alternated so both see the same machine load. Prints the median
// latency and the select process's CPU per call for small metadata calls and an instant query.
// Requires `pnpm build` in both trees.
import { loadavg } from "node:os";
import { cpuSeconds, freePort, serviceMain, startProcess, waitHealthy } from "../lib/procs.js";
import { forceFlush, remoteWrite, startCluster } from "../lib/cluster.js";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--?/, "").split("=") as [string, string]));
const OLD = args.get("old");
if (OLD === undefined) throw new Error("--old=<path to the other build's services/select/dist/main.js> is required");
const N = Number(args.get("n") ?? 400);
const c = await startCluster({ storageNodes: 2, replicationFactor: 1 });
const now = Math.floor(Date.now() / 15_000) * 15_000;
const series: { labels: Record<string, string>; samples: [number, number][] }[] = [];
for (let h = 0; h < 25; h++) for (let m = 0; m < 40; m++) series.push({ labels: { __name__: `metric_${m}`, instance: `host-${h}`, job: "node" }, samples: [[now - 15_000, m], [now, m]] as [number, number][] });
await remoteWrite(c.insertUrl, series);
await forceFlush(c);
const start = async (main: string) => {
  const port = await freePort();
  const p = startProcess(process.execPath, [main, `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`, `-httpListenAddr=127.0.0.1:${port}`]);
  await waitHealthy(`http://127.0.0.1:${port}/health`, p);
  return { p, base: `http://127.0.0.1:${port}/select/0/prometheus` };
};
const targets = { old: await start(OLD), fastify: await start(serviceMain("select")) };
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}; ${N} calls each, alternated`);
const calls = {
  labels: "/api/v1/labels",
  "label values instance": "/api/v1/label/instance/values?match[]=metric_1",
  "label values __name__": "/api/v1/label/__name__/values",
  "series one host": `/api/v1/series?match[]=${encodeURIComponent('{instance="host-3"}')}`,
  "instant query": `/api/v1/query?query=${encodeURIComponent("sum(metric_3)")}&time=${now / 1000}`,
};
const rows: string[] = [];
for (const [name, path] of Object.entries(calls)) {
  const ms: Record<string, number[]> = { old: [], fastify: [] };
  const cpu0 = { old: cpuSeconds(targets.old.p.child.pid!), fastify: cpuSeconds(targets.fastify.p.child.pid!) };
  for (let i = 0; i < 20; i++) for (const t of Object.values(targets)) await (await fetch(t.base + path)).text();
  for (let i = 0; i < N; i++) {
    for (const k of (i % 2 === 0 ? ["old", "fastify"] : ["fastify", "old"]) as ("old" | "fastify")[]) {
      const t0 = performance.now();
      const r = await fetch(targets[k].base + path);
      await r.text();
      ms[k]!.push(performance.now() - t0);
    }
  }
  const cpu = { old: cpuSeconds(targets.old.p.child.pid!) - cpu0.old, fastify: cpuSeconds(targets.fastify.p.child.pid!) - cpu0.fastify };
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  rows.push(`| ${name.padEnd(22)} | ${med(ms.old!).toFixed(2).padStart(7)} | ${med(ms.fastify!).toFixed(2).padStart(7)} | ${(med(ms.fastify!) / med(ms.old!)).toFixed(2)} | ${((cpu.old * 1000) / (N + 20)).toFixed(2)} | ${((cpu.fastify * 1000) / (N + 20)).toFixed(2)} |`);
}
console.log(`| call | --old ms (median) | this ms | ratio | --old CPU ms/call | this CPU ms/call |\n| --- | ---: | ---: | ---: | ---: | ---: |\n${rows.join("\n")}`);
await targets.old.p.stop();
await targets.fastify.p.stop();
await c.stop();
