import { remoteWrite } from "./cluster.js";

/**
 * A remote-write load for durability tests: request k holds one sample of each of `series`
 * series `<metric>{s="0".."series-1"}` at timestamp t0 + k with value k, so every request's
 * samples are distinct and can be looked up afterwards. Records which requests were
 * acknowledged (2xx) and how the others failed.
 */
export class WriteLoad {
  readonly acked = new Set<number>();
  /** Status code (or "error" for a failed connection) → count of unacknowledged requests. */
  readonly failures = new Map<string, number>();
  private next = 0;
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly insertUrl: () => string,
    readonly metric: string,
    readonly series: number,
    readonly t0: number,
  ) {}

  start(concurrency: number): void {
    this.running = true;
    for (let i = 0; i < concurrency; i++) this.workers.push(this.worker());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  failed(status: string): number {
    return this.failures.get(status) ?? 0;
  }

  /** Resolves once `n` more requests than now have been acknowledged. */
  async waitAcked(n: number, timeoutMs = 60_000): Promise<void> {
    const want = this.acked.size + n;
    const deadline = Date.now() + timeoutMs;
    while (this.acked.size < want) {
      if (Date.now() > deadline) throw new Error(`only ${this.acked.size} of ${want} requests acknowledged; failures: ${JSON.stringify([...this.failures])}`);
      await sleep(50);
    }
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const k = this.next++;
      const samples = Array.from({ length: this.series }, (_, s) => ({ labels: { __name__: this.metric, s: String(s) }, samples: [[this.t0 + k, k] as const] }));
      let status: string;
      try {
        const r = await remoteWrite(this.insertUrl(), samples);
        status = String(r.status);
      } catch {
        status = "error";
      }
      if (status.startsWith("2")) this.acked.add(k);
      else {
        this.failures.set(status, (this.failures.get(status) ?? 0) + 1);
        await sleep(20);
      }
    }
  }

  /**
   * Checks series → (timestamp → values) against the acknowledged requests: returns a
   * description of the first few problems (missing samples, wrong values, duplicates).
   */
  verify(found: ReadonlyMap<string, ReadonlyMap<number, number[]>>): string[] {
    const problems: string[] = [];
    for (let s = 0; s < this.series && problems.length < 10; s++) {
      const got = found.get(String(s));
      for (const k of this.acked) {
        const vals = got?.get(this.t0 + k);
        if (vals === undefined) problems.push(`series s=${s}: acknowledged sample of request ${k} missing`);
        else if (vals.length !== 1 || vals[0] !== k) problems.push(`series s=${s}: request ${k} found as ${JSON.stringify(vals)}`);
        if (problems.length >= 10) break;
      }
    }
    return problems;
  }
}

/** Reads select's /api/v1/export of `metric` into s label → timestamp → values. */
export async function exportSamples(selectUrl: string, metric: string, t0: number): Promise<Map<string, Map<number, number[]>>> {
  // deny_partial_response: a node restarted just now may still be reconnecting; without it select
  // answers 200 with that node's series missing, which would read as lost samples.
  const q = new URLSearchParams({ "match[]": `{__name__="${metric}"}`, start: String((t0 - 1000) / 1000), end: String(Date.now() / 1000 + 3600), deny_partial_response: "1" });
  // Until the channel is back, select answers 503: ask again.
  let r = await fetch(`${selectUrl}/select/0/prometheus/api/v1/export?${q}`);
  for (const deadline = Date.now() + 30_000; r.status === 503 && Date.now() < deadline; ) {
    await r.text();
    await sleep(200);
    r = await fetch(`${selectUrl}/select/0/prometheus/api/v1/export?${q}`);
  }
  const text = await r.text();
  if (r.status !== 200) throw new Error(`export: ${r.status} ${text}`);
  const out = new Map<string, Map<number, number[]>>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const o = JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] };
    const m = out.get(o.metric["s"]!) ?? new Map<number, number[]>();
    out.set(o.metric["s"]!, m);
    o.timestamps.forEach((t, i) => m.set(t, [...(m.get(t) ?? []), o.values[i]!]));
  }
  return out;
}

/** The value of one sample line of a /metrics page (exact name with labels), or undefined. */
export async function metricValue(url: string, name: string): Promise<number | undefined> {
  const r = await fetch(url);
  const text = await r.text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until true (throws with `what` after timeoutMs). */
export async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await cond();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
