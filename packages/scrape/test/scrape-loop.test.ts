import { createServer, type Server } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MetricsRegistry, createLogger } from "@strata/core";
import { RemoteWriteFanout, ScrapeLoop, parseScrapeConfig, resolveTargets, SCRAPE_ACCEPT } from "@strata/scrape";
import { startReceiver, waitUntil, type Receiver } from "../../../test/lib/rw-receiver.js";
import { tempDir } from "../../../test/lib/procs.js";

/**
 * Scrape loops against a real HTTP target on loopback, forwarding through a real durable queue
 * to a real remote write receiver. Scrapes are triggered with explicit timestamps (no timers).
 */

const log = createLogger({ name: "test", level: "error" });

interface Exporter {
  body: string;
  status: number;
  gzip: boolean;
  contentType: string;
  lastAccept: string;
  readonly addr: string;
  close(): Promise<void>;
}

async function startExporter(): Promise<Exporter> {
  const e = { body: "", status: 200, gzip: false, contentType: "text/plain; version=0.0.4", lastAccept: "", addr: "", close: async () => undefined } as Exporter;
  const server: Server = createServer((req, res) => {
    e.lastAccept = String(req.headers["accept"] ?? "");
    if (e.status !== 200) {
      res.writeHead(e.status);
      res.end("nope");
      return;
    }
    const gz = e.gzip && String(req.headers["accept-encoding"]).includes("gzip");
    res.writeHead(200, { "content-type": e.contentType, ...(gz ? { "content-encoding": "gzip" } : {}) });
    res.end(gz ? gzipSync(e.body) : e.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  (e as { addr: string }).addr = `127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  e.close = () => new Promise((r) => server.close(() => r()));
  return e;
}

describe("scrape loop", () => {
  let exp: Exporter;
  let rcv: Receiver;
  const dir = tempDir("scrape-loop");
  const fanouts: RemoteWriteFanout[] = [];

  beforeAll(async () => {
    exp = await startExporter();
    rcv = await startReceiver();
  });
  afterAll(async () => {
    await Promise.all(fanouts.map((f) => f.close()));
    await exp.close();
    await rcv.close();
    dir.remove();
  });
  afterEach(() => {
    rcv.series.clear();
    exp.status = 200;
    exp.gzip = false;
    exp.contentType = "text/plain; version=0.0.4";
  });

  let n = 0;
  const loopFor = (jobYaml: string, externalLabels = "") => {
    const c = parseScrapeConfig(
      `global: { external_labels: { ${externalLabels} } }\nscrape_configs:\n  - job_name: j\n    static_configs: [{ targets: ["${exp.addr}"], labels: { env: test } }]\n${jobYaml}`,
      "prometheus.yml",
    );
    const job = c.scrapeConfigs[0]!;
    const target = resolveTargets(job, job.staticConfigs).active[0]!;
    const fanout = new RemoteWriteFanout({ targets: [{ url: rcv.url }], tmpDataPath: `${dir.path}/${n++}`, maxDiskUsagePerURL: 0, version: 1, log, metrics: new MetricsRegistry(), retryMinMs: 20 });
    fanouts.push(fanout);
    return new ScrapeLoop(target, { fanout, externalLabels: c.externalLabels, log, maxScrapeBytes: 1 << 20 });
  };
  const inst = () => exp.addr;

  it("writes samples with target labels, the automatic series and stale markers for vanished series", async () => {
    const loop = loopFor("", "dc: eu1");
    exp.body = "# TYPE a counter\na_total 1\nb{x=\"1\"} 2\nb{x=\"2\"} 3\n";
    await loop.scrape(1_000_000);
    exp.body = "# TYPE a counter\na_total 2\nb{x=\"1\"} 4\n";
    await loop.scrape(1_010_000);
    await waitUntil("both scrapes", () => rcv.find({ __name__: "up" })[0]?.samples.length === 2);
    const base = { job: "j", instance: inst(), env: "test", dc: "eu1" };
    expect(rcv.find({ __name__: "a_total" })).toEqual([{ labels: { __name__: "a_total", ...base }, samples: [{ ts: 1_000_000, value: 1, stale: false }, { ts: 1_010_000, value: 2, stale: false }] }]);
    const b2 = rcv.find({ __name__: "b", x: "2" })[0]!;
    expect(b2.samples.map((s) => [s.ts, s.stale])).toEqual([[1_000_000, false], [1_010_000, true]]);
    expect(rcv.find({ __name__: "up" })[0]!.samples.map((s) => s.value)).toEqual([1, 1]);
    expect(rcv.find({ __name__: "scrape_samples_scraped" })[0]!.samples.map((s) => s.value)).toEqual([3, 2]);
    expect(rcv.find({ __name__: "scrape_samples_post_metric_relabeling" })[0]!.samples.map((s) => s.value)).toEqual([3, 2]);
    expect(rcv.find({ __name__: "scrape_series_added" })[0]!.samples.map((s) => s.value)).toEqual([3, 0]);
    expect(rcv.find({ __name__: "scrape_duration_seconds" })[0]!.samples[0]!.value).toBeGreaterThan(0);
    expect(exp.lastAccept).toBe(SCRAPE_ACCEPT);
  });

  it("a failing target reports up=0 and all its series go stale; a removed target's series go stale", async () => {
    const loop = loopFor("");
    exp.body = "m 1\n";
    await loop.scrape(2_000_000);
    exp.status = 500;
    await loop.scrape(2_010_000);
    await waitUntil("second scrape", () => rcv.find({ __name__: "up" })[0]?.samples.length === 2);
    expect(rcv.find({ __name__: "up" })[0]!.samples.map((s) => s.value)).toEqual([1, 0]);
    expect(rcv.find({ __name__: "m" })[0]!.samples.map((s) => s.stale)).toEqual([false, true]);
    expect(loop.lastError).toContain("HTTP status 500");
    exp.status = 200;
    await loop.scrape(2_020_000);
    await loop.stop(true);
    await waitUntil("stale markers of the removed target", () => rcv.find({ __name__: "up" })[0]?.samples.length === 4);
    expect(rcv.find({ __name__: "up" })[0]!.samples.map((s) => s.stale)).toEqual([false, false, false, true]);
    expect(rcv.find({ __name__: "m" })[0]!.samples.map((s) => s.stale)).toEqual([false, true, false, true]);
  });

  it("honor_labels false prefixes clashing labels with exported_; true keeps the scraped ones", async () => {
    exp.body = 'm{job="other",instance="x",exported_job="y"} 1\n';
    const plain = loopFor("");
    await plain.scrape(3_000_000);
    await waitUntil("scrape", () => rcv.find({ __name__: "m" }).length === 1);
    expect(rcv.find({ __name__: "m" })[0]!.labels).toEqual({ __name__: "m", job: "j", instance: inst(), env: "test", exported_job: "y", exported_exported_job: "other", exported_instance: "x" });
    rcv.series.clear();
    const honor = loopFor("    honor_labels: true\n");
    await honor.scrape(3_000_000);
    await waitUntil("scrape", () => rcv.find({ __name__: "m" }).length === 1);
    expect(rcv.find({ __name__: "m" })[0]!.labels).toEqual({ __name__: "m", job: "other", instance: "x", env: "test", exported_job: "y" });
  });

  it("honor_timestamps, metric_relabel_configs, gzip and OpenMetrics", async () => {
    exp.gzip = true;
    exp.contentType = "application/openmetrics-text; version=1.0.0";
    exp.body = "# TYPE c counter\nc_total 5 1234.5\nc_created 1000\n# TYPE g gauge\ng 7\n# TYPE go_x gauge\ngo_x 1\n# EOF\n";
    const loop = loopFor("    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: go_.*\n        action: drop\n");
    await loop.scrape(4_000_000);
    await waitUntil("scrape", () => rcv.find({ __name__: "up" }).length === 1);
    expect(rcv.find({ __name__: "c_total" })[0]!.samples[0]!.ts).toBe(1_234_500);
    expect(rcv.find({ __name__: "g" })[0]!.samples[0]!.ts).toBe(4_000_000);
    expect(rcv.find({ __name__: "go_x" })).toEqual([]);
    expect(rcv.find({ __name__: "scrape_samples_scraped" })[0]!.samples[0]!.value).toBe(3);
    expect(rcv.find({ __name__: "scrape_samples_post_metric_relabeling" })[0]!.samples[0]!.value).toBe(2);
    rcv.series.clear();
    const noHonor = loopFor("    honor_timestamps: false\n");
    await noHonor.scrape(4_100_000);
    await waitUntil("scrape", () => rcv.find({ __name__: "c_total" }).length === 1);
    expect(rcv.find({ __name__: "c_total" })[0]!.samples[0]!.ts).toBe(4_100_000);
  });

  it("sample_limit fails the scrape whole (up=0, nothing of it written)", async () => {
    exp.body = "a 1\nb 2\nc 3\n";
    const loop = loopFor("    sample_limit: 2\n");
    await loop.scrape(5_000_000);
    await waitUntil("scrape", () => rcv.find({ __name__: "up" }).length === 1);
    expect(rcv.find({ __name__: "up" })[0]!.samples[0]!.value).toBe(0);
    expect(rcv.find({ __name__: "a" })).toEqual([]);
    expect(loop.lastError).toContain("sample_limit exceeded");
  });

  it("a known series takes the fast path: quoted braces, exemplars, timestamps and CRLF lines", async () => {
    const loop = loopFor("");
    const body = (v: number) => `# TYPE m counter\r\nm{a="x} y",b="q\\"z"} ${v} ${5000 + v}\r\nn ${v} # {trace="1"} 3\r\no{a="1"}  ${v}\r\n`;
    for (const v of [1, 2, 3]) {
      exp.body = body(v);
      await loop.scrape(6_000_000 + v);
    }
    await waitUntil("three scrapes", () => rcv.find({ __name__: "up" })[0]?.samples.length === 3);
    expect(rcv.find({ __name__: "m" })[0]!.labels).toMatchObject({ a: "x} y", b: 'q"z' });
    expect(rcv.find({ __name__: "m" })[0]!.samples.map((s) => [s.ts, s.value])).toEqual([[5001, 1], [5002, 2], [5003, 3]]);
    expect(rcv.find({ __name__: "n" })[0]!.samples.map((s) => [s.ts, s.value])).toEqual([[6_000_001, 1], [6_000_002, 2], [6_000_003, 3]]);
    expect(rcv.find({ __name__: "o" })[0]!.samples.map((s) => s.value)).toEqual([1, 2, 3]);
    expect(rcv.find({ __name__: "scrape_series_added" })[0]!.samples.map((s) => s.value)).toEqual([3, 0, 0]);
    // A known series whose value turns bad fails the scrape like the full parser does.
    exp.body = 'm{a="x} y",b="q\\"z"} oops\n';
    await loop.scrape(6_000_010);
    expect(loop.lastError).toContain("invalid value");
  });
});

describe("parseDecimal (the fast path's value parser)", () => {
  it("agrees with Number() bit for bit or declines", async () => {
    const { parseDecimal } = await import("@strata/scrape");
    const fc = (await import("fast-check")).default;
    const dec = (s: string) => {
      const b = Buffer.from(s, "latin1");
      return parseDecimal(b, 0, b.length);
    };
    const same = (s: string) => {
      const v = dec(s);
      if (v === undefined) return true;
      return Object.is(v, Number(s));
    };
    for (const s of ["0", "-0", "1", "-12.5", "3e-7", "1.5E+06", "123456789012345", "0.000001", "1e22", "1e-22", "+4.25", "007", ".5", "5."]) {
      expect(same(s), s).toBe(true);
      expect(dec(s), s).toBeDefined();
    }
    for (const s of ["", "-", "e5", "1e", "1.2.3", "NaN", "+Inf", "0x10", "1_0", "1234567890123456"]) expect(dec(s), s).toBeUndefined();
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => same(String(d)) && same(d.toFixed(3)) && same(d.toExponential(5))), { numRuns: 5000 });
    fc.assert(fc.property(fc.stringMatching(/^-?\d{0,10}(\.\d{0,8})?([eE][+-]?\d{1,3})?$/), (s) => same(s)), { numRuns: 5000 });
  });
});

describe("SeriesCache (series bytes → prepared series across scrapes)", () => {
  it("finds what was added and survives sweeps, as a Map of the same keys does", async () => {
    const { SeriesCache, encodeLabelsV1, hashBytes } = await import("@strata/scrape");
    const fc = (await import("fast-check")).default;
    const keys = fc.array(fc.stringMatching(/^[a-c]{1,6}(\{x="[ab]{0,40}"\})?$/), { maxLength: 60 });
    // Three URLs: the first two share one form for most series (stored once), the third drops
    // some; series whose key starts with "c" are dropped by metric relabeling (null ref). The
    // target labels job and instance are stored as markers where a series has them unchanged.
    const job = { name: "job", value: "j" };
    const instance = { name: "instance", value: "host:9100" };
    const shared = [encodeLabelsV1([instance]), encodeLabelsV1([job])];
    const enc = (...ls: { name: string; value: string }[]) => Buffer.from(encodeLabelsV1(ls));
    const refOf = (line: string) => {
      if (line.startsWith("c")) return null;
      const name = { name: "__name__", value: line };
      const a = enc(name, instance, job);
      const u2 = line.length % 3 === 0 ? enc(name, { name: "instance", value: "other" }, job) : a;
      return { perUrl: [a, u2, line.length % 2 === 0 ? null : enc({ name: "a", value: line }, { name: "x", value: "y" })] };
    };
    const labelsOf = (c: InstanceType<typeof SeriesCache>, id: number) =>
      [0, 1, 2].map((u) => {
        const l = c.labels(id, u);
        return l === null ? null : Buffer.from(l).toString("latin1");
      });
    const want = (line: string) => refOf(line)?.perUrl.map((p) => (p === null ? null : p.toString("latin1"))) ?? null;
    fc.assert(
      fc.property(fc.array(keys, { minLength: 1, maxLength: 8 }), (scrapes) => {
        const c = new SeriesCache(3, shared);
        const model = new Set<string>();
        const gone: string[] = [];
        scrapes.forEach((lines, k) => {
          const no = k + 1;
          for (const line of lines) {
            const b = Buffer.from(`pad ${line} 1`);
            const [s, e] = [4, 4 + Buffer.byteLength(line)];
            const h = hashBytes(b, s, e);
            let id = c.find(b, s, e, h);
            if (id < 0) {
              expect(model.has(line)).toBe(false);
              model.add(line);
              id = c.add(b, s, e, h, refOf(line), no);
            }
            expect(c.kept[id]).toBe(line.startsWith("c") ? 0 : 1);
            if (c.kept[id] === 1) expect(labelsOf(c, id)).toEqual(want(line));
            c.seen[id] = no;
          }
          const now = new Set(lines);
          const wantGone = [...model].filter((x) => !now.has(x) && !x.startsWith("c") && k > 0 && scrapes.slice(0, k).some((p) => p.includes(x)));
          gone.length = 0;
          c.sweep(no, true, (id) => gone.push(labelsOf(c, id)[0]!));
          for (const x of [...model]) if (!now.has(x)) model.delete(x);
          expect(c.size).toBe(model.size);
          expect(gone.sort()).toEqual(wantGone.map((x) => want(x)![0]!).sort());
          // What is left is still found, with its labels.
          for (const line of model) {
            const b = Buffer.from(line);
            const id = c.find(b, 0, b.length, hashBytes(b, 0, b.length));
            expect(id).toBeGreaterThanOrEqual(0);
            if (c.kept[id] === 1) expect(labelsOf(c, id)).toEqual(want(line));
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});
