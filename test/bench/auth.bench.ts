// pnpm bench:auth [--requests=20000] [--concurrency=32] [--posts=200] [--postMiB=4] [--rounds=3]
//
// strata-auth against Debian's vmauth, side by side on the same auth.yml in front of the same
// echo backend process (test/fixtures/echo-backend.mjs), all on loopback: small GET requests
// (requests/s at a fixed concurrency over keep-alive connections) and streamed POST bodies
// (MiB/s). Each round measures vmauth, then strata-auth, then the backend alone; the median
// round is printed with the ratio strata/vmauth. Requires `pnpm build` first.
import { Agent, request } from "node:http";
import { basicAuth, startAuth, startEcho } from "../lib/auth.js";
import { hasCommand, isBuilt } from "../lib/procs.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--?/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const REQUESTS = Number(args.get("requests") ?? 20_000);
const CONCURRENCY = Number(args.get("concurrency") ?? 32);
const POSTS = Number(args.get("posts") ?? 200);
const POST_BYTES = Number(args.get("postMiB") ?? 4) * 1024 * 1024;
const ROUNDS = Number(args.get("rounds") ?? 3);

if (!isBuilt("auth")) throw new Error("run pnpm build first");
if (!hasCommand("vmauth")) throw new Error("vmauth not found: apt-get install victoria-metrics");

function one(agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends `n` requests with `c` in flight; resolves with the seconds taken. */
async function load(port: number, n: number, c: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: c });
  let next = 0;
  let bad = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next++;
        if ((await one(agent, port, method, path, headers, body)) !== 200) bad++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  agent.destroy();
  if (bad > 0) throw new Error(`${bad} of ${n} requests did not answer 200`);
  return s;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const backend = await startEcho("bench");
const config = `users:\n  - username: bench\n    password: pw\n    url_prefix: ${backend.url}/select/42/prometheus\n`;
const vm = await startAuth(config, { cmd: "vmauth" });
const strata = await startAuth(config);
try {
  const auth = { authorization: basicAuth("bench", "pw") };
  const body = Buffer.alloc(POST_BYTES, 0x61);
  const targets = [
    ["vmauth", vm.port, auth],
    ["strata-auth", strata.port, auth],
    ["backend alone", backend.port, {}],
  ] as const;
  const gets = new Map<string, number[]>();
  const posts = new Map<string, number[]>();
  // Warm-up: connections, JIT.
  for (const [, port, h] of targets) await load(port, 2000, CONCURRENCY, "GET", "/api/v1/query?query=up", h);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, port, h] of targets) {
      const s = await load(port, REQUESTS, CONCURRENCY, "GET", "/api/v1/query?query=up", h);
      gets.set(name, [...(gets.get(name) ?? []), REQUESTS / s]);
      const sp = await load(port, POSTS, 4, "POST", "/api/v1/import", { ...h, "content-type": "application/octet-stream" }, body);
      posts.set(name, [...(posts.get(name) ?? []), (POSTS * POST_BYTES) / (1024 * 1024) / sp]);
    }
  }
  const g = (n: string): number => median(gets.get(n)!);
  const p = (n: string): number => median(posts.get(n)!);
  console.log(`auth proxy bench: ${REQUESTS} GETs at concurrency ${CONCURRENCY}; ${POSTS} POSTs of ${POST_BYTES / 1048576} MiB at concurrency 4; median of ${ROUNDS} rounds`);
  console.log("target          GET req/s   POST MiB/s");
  for (const [name] of targets) console.log(`${name.padEnd(15)} ${g(name).toFixed(0).padStart(9)}   ${p(name).toFixed(0).padStart(10)}`);
  console.log(`strata-auth / vmauth: GET ${(g("strata-auth") / g("vmauth")).toFixed(2)}×, POST ${(p("strata-auth") / p("vmauth")).toFixed(2)}×`);
} finally {
  await Promise.all([vm.stop(), strata.stop()]);
  await backend.proc.stop();
}
