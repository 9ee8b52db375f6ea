// pnpm bench:meta-calls [--n=600] [--selectFlags="-search.maxMetaCacheEntries=0"]
//
// Small metadata calls (metadata, label values, labels, series) against a Strata cluster (2
// storage nodes, insert, select) and Debian's victoria-metrics single node holding the same 2000
// series: 300 warm-up calls, then N calls alternated between both, median latency per call and
// the ratio. Select's caches answer repeated calls; --selectFlags=-search.maxMetaCacheEntries=0
// measures the storage round trips. Requires `pnpm build`.
import { loadavg } from "node:os";
import { forceFlush, remoteWriteBody, startCluster } from "../lib/cluster.js";
import { startVictoriaMetrics } from "./victoria-metrics.js";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--?/, "").split(/=(.*)/s).slice(0, 2) as [string, string]));
const N = Number(args.get("n") ?? 600);
const c = await startCluster({ storageNodes: 2, replicationFactor: 1, selectFlags: (args.get("selectFlags") ?? "").split(" ").filter(Boolean) });
const vm = await startVictoriaMetrics("meta-calls-vm");
try {
  const now = Math.floor(Date.now() / 15_000) * 15_000;
  const series: { labels: Record<string, string>; samples: [number, number][] }[] = [];
  for (let h = 0; h < 25; h++) {
    for (let m = 0; m < 80; m++) {
      series.push({ labels: { __name__: `metric_${m}`, instance: `host-${h}.example.com:9100`, job: "node", mode: `m${m % 8}` }, samples: [[now - 15_000, m], [now, m]] });
    }
  }
  const body = Buffer.from(remoteWriteBody(series));
  const headers = { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" };
  for (const url of [`${c.insertUrl}/insert/0/prometheus/api/v1/write`, vm.writeUrl]) {
    const r = await fetch(url, { method: "POST", headers, body });
    if (r.status !== 204) throw new Error(`${url}: HTTP ${r.status}: ${await r.text()}`);
  }
  await forceFlush(c);
  await vm.flush();
  const enc = encodeURIComponent;
  const range = `start=${now / 1000 - 6 * 3600}&end=${now / 1000}`;
  const calls: Record<string, string> = {
    metadata: "/api/v1/metadata?limit=100",
    "label values mode (match one host)": `/api/v1/label/mode/values?match[]=${enc('metric_1{instance="host-1.example.com:9100"}')}&${range}`,
    labels: `/api/v1/labels?${range}`,
    "series one host": `/api/v1/series?match[]=${enc('metric_1{instance="host-1.example.com:9100"}')}&${range}`,
    "series metric_3 (25 series)": `/api/v1/series?match[]=metric_3&${range}`,
  };
  const targets = [`${c.selectUrl}/select/0/prometheus`, vm.api];
  const get = async (url: string) => {
    const r = await fetch(url, { headers: { "accept-encoding": "identity" } });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}: ${text.slice(0, 300)}`);
  };
  console.log(`${N} calls each after 300 warm-up calls, alternated; node ${process.version}; load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  console.log("| call | strata ms | victoria-metrics ms | ratio |\n| --- | ---: | ---: | ---: |");
  for (const [name, path] of Object.entries(calls)) {
    for (const base of targets) for (let i = 0; i < 300; i++) await get(base + path);
    const lat = targets.map(() => [] as number[]);
    for (let i = 0; i < N; i++) {
      for (let t = 0; t < targets.length; t++) {
        const t0 = performance.now();
        await get(targets[t]! + path);
        lat[t]!.push(performance.now() - t0);
      }
    }
    const med = lat.map((l) => l.sort((a, b) => a - b)[l.length >> 1]!);
    console.log(`| ${name} | ${med[0]!.toFixed(2)} | ${med[1]!.toFixed(2)} | ${(med[0]! / med[1]!).toFixed(2)} |`);
  }
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
} finally {
  await vm.stop();
  await c.stop();
}
