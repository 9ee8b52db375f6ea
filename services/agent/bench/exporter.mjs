// A node_exporter-like exporter for the agent benchmark: one process serving `targets` HTTP
// servers on 127.0.0.1 (consecutive ports from `basePort`), each with `series` series of text
// exposition whose counter values move on every scrape. Prints "ready" when all listen.
import { createServer } from "node:http";

const [targets, series, basePort] = process.argv.slice(2).map(Number);
// Every line a distinct series (the label values derive from the line's number): an exposition
// with repeated series is invalid, and Prometheus drops the repeats.
const families = [
  ["node_cpu_seconds_total", "counter", (i) => `cpu="${Math.floor(i / 8)}",mode="${["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"][i % 8]}"`],
  ["node_network_receive_bytes_total", "counter", (i) => `device="eth${i}"`],
  ["node_disk_read_bytes_total", "counter", (i) => `device="sd${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}"`],
  ["node_filesystem_avail_bytes", "gauge", (i) => `device="/dev/sd${i % 8}",fstype="ext4",mountpoint="/mnt/v${i}"`],
  ["node_memory_info_bytes", "gauge", (i) => `kind="k${i}"`],
];
function body(t, scrape) {
  const lines = [];
  let n = 0;
  for (let f = 0; n < series; f = (f + 1) % families.length) {
    const [name, type, lbl] = families[f];
    lines.push(`# HELP ${name} Benchmark metric ${name}.`, `# TYPE ${name} ${type}`);
    for (let i = 0; i < 25 && n < series; i++, n++) {
      const base = (t * 7919 + n * 104729) % 1e9;
      lines.push(`${name}{${lbl(n)}} ${type === "counter" ? base + scrape * (n % 13) : (base % 1000) + 0.5}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
// Two rendered versions per target, alternating: the scrapers see changing values without the
// exporter spending CPU on rendering during the run.
const bodies = Array.from({ length: targets }, (_, t) => [body(t, 1), body(t, 2)]);
const counts = new Int32Array(targets);
let listening = 0;
for (let t = 0; t < targets; t++) {
  // Keep-alive longer than the scrape interval, as Go's servers (node_exporter) do.
  const server = createServer((req, res) => {
    const b = bodies[t][counts[t]++ & 1];
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": Buffer.byteLength(b) });
    res.end(b);
  });
  server.keepAliveTimeout = 120_000;
  server.listen(basePort + t, "127.0.0.1", () => {
    if (++listening === targets) process.stdout.write("ready\n");
  });
}
