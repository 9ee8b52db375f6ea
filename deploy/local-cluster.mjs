#!/usr/bin/env node
// Starts a local Strata cluster from the built services: N storage nodes, insert and select on
// the default ports, data under ./data. Prints the URLs an operator needs and stops every process
// on Ctrl-C (SIGINT) or SIGTERM. Run `bash deploy/start.sh` to install and build first.
//
//   node deploy/local-cluster.mjs [-dataDir=./data] [-storageNodes=2] [-replicationFactor=1]
//                                 [-insertPort=8480] [-selectPort=8481] [-storageBasePort=8400]
//                                 [-storageHttpBasePort=8482] [-listenAddr=127.0.0.1]
//
// insert and select listen on -listenAddr (loopback unless told otherwise, e.g. -listenAddr=0.0.0.0
// to reach them from other machines); storage nodes always listen on loopback only.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const opts = { dataDir: "./data", storageNodes: "2", replicationFactor: "1", insertPort: "8480", selectPort: "8481", storageBasePort: "8400", storageHttpBasePort: "8482", listenAddr: "127.0.0.1" };
for (const arg of process.argv.slice(2)) {
  const m = /^--?([^=]+)=(.*)$/.exec(arg);
  if (arg === "-help" || arg === "--help" || arg === "-h") {
    console.log("usage: node deploy/local-cluster.mjs " + Object.entries(opts).map(([k, v]) => `[-${k}=${v}]`).join(" "));
    process.exit(0);
  }
  if (!m || !(m[1] in opts)) {
    console.error(`local-cluster: unknown argument ${arg} (known: ${Object.keys(opts).map((k) => "-" + k).join(", ")})`);
    process.exit(2);
  }
  opts[m[1]] = m[2];
}
const nodes = Number(opts.storageNodes);
const rf = Number(opts.replicationFactor);
const base = Number(opts.storageBasePort);
const httpBase = Number(opts.storageHttpBasePort);
if (!(nodes >= 1) || !(rf >= 1) || rf > nodes) {
  console.error(`local-cluster: need 1 <= replicationFactor (${rf}) <= storageNodes (${nodes})`);
  process.exit(2);
}
const dataDir = resolve(opts.dataDir);

const main = (name) => join(root, "services", name, "dist", "main.js");
/** V8's young generation capped as systemd/strata-{storage,insert}.service cap it. */
const UNIT_NODE_ARGS = { storage: ["--max-semi-space-size=8"], insert: ["--max-semi-space-size=8"] };
const children = [];
const missing = [];

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\nlocal-cluster: ${signal}: stopping ${children.length} processes`);
  // Stateless services first, then storage, so nothing in flight is lost.
  const order = [...children].sort((a, b) => Number(a.label.startsWith("storage")) - Number(b.label.startsWith("storage")));
  for (const { child } of order) child.kill("SIGTERM");
  const timer = setTimeout(() => {
    for (const { child } of children) if (child.exitCode === null) child.kill("SIGKILL");
  }, 30_000);
  timer.unref();
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));

function start(label, service, args) {
  if (!existsSync(main(service))) {
    missing.push(`${label} (services/${service}/dist/main.js not built or not written yet)`);
    return;
  }
  // glibc malloc settings of every deployment (docs/install.md, "Memory"); the environment overrides them.
  const env = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072", ...process.env };
  // Node.js options of the systemd units' ExecStart (docs/install.md, "Memory").
  const child = spawn(process.execPath, [...(UNIT_NODE_ARGS[service] ?? []), main(service), ...args], { stdio: ["ignore", "inherit", "inherit"], env });
  child.on("exit", (code, signal) => {
    if (!stopping) console.error(`local-cluster: ${label} exited (code ${code}, signal ${signal})`);
  });
  children.push({ label, child });
}

/** Polls `url` until it answers 200 (true), the process exits or 60 s pass (false). */
async function waitHealthy(url, child) {
  const until = Date.now() + 60_000;
  while (Date.now() < until && !stopping && child.exitCode === null) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

// Storage node i listens on base+10*i (insert RPC), base+10*i+1 (select RPC), httpBase+10*i (HTTP).
const insertNodes = [];
const selectNodes = [];
for (let i = 0; i < nodes; i++) {
  const dir = join(dataDir, `storage-${i + 1}`);
  mkdirSync(dir, { recursive: true });
  const pInsert = base + 10 * i;
  const pSelect = base + 10 * i + 1;
  const pHttp = httpBase + 10 * i;
  insertNodes.push(`127.0.0.1:${pInsert}`);
  selectNodes.push(`127.0.0.1:${pSelect}`);
  start(`storage-${i + 1}`, "storage", [
    `-storageDataPath=${dir}`,
    `-vminsertAddr=127.0.0.1:${pInsert}`,
    `-vmselectAddr=127.0.0.1:${pSelect}`,
    `-httpListenAddr=127.0.0.1:${pHttp}`,
  ]);
}
// insert and select start once every storage node answers /health: their first connections then
// succeed, with no reconnect backoff left over from a node that was still opening its data.
const storageUp = await Promise.all(
  children.map(({ child }, i) => waitHealthy(`http://127.0.0.1:${httpBase + 10 * i}/health`, child)),
);
if (stopping) {
  await Promise.all(children.map(({ child }) => new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)))));
  process.exit(0);
}
if (storageUp.some((ok) => !ok)) console.error("local-cluster: a storage node did not answer /health within 60s; starting insert and select anyway");
start("insert", "insert", [`-httpListenAddr=${opts.listenAddr}:${opts.insertPort}`, `-storageNode=${insertNodes.join(",")}`, `-replicationFactor=${rf}`]);
start("select", "select", [`-httpListenAddr=${opts.listenAddr}:${opts.selectPort}`, `-storageNode=${selectNodes.join(",")}`, `-replicationFactor=${rf}`]);

console.log(`
Strata local cluster — ${nodes} storage node(s), replicationFactor=${rf}, data in ${dataDir}
  remote_write URL : http://localhost:${opts.insertPort}/insert/0/prometheus/api/v1/write
  Grafana (Prometheus data source): http://localhost:${opts.selectPort}/select/0/prometheus
  Web UI           : http://localhost:${opts.selectPort}/select/0/vmui/
  Storage metrics  : ${Array.from({ length: nodes }, (_, i) => `http://localhost:${httpBase + 10 * i}/metrics`).join(" ")}
insert and select listen on ${opts.listenAddr} (-listenAddr=0.0.0.0 to reach them from other machines; storage stays on loopback).
Press Ctrl-C to stop every process.`);
if (missing.length > 0) console.log(`Not started (not available yet): ${missing.join("; ")}`);
if (children.length === 0) {
  console.log("local-cluster: nothing to run yet.");
  process.exit(0);
}
await Promise.all(children.map(({ child }) => new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)))));
process.exit(0);
