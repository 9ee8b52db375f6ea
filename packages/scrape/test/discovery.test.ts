import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MetricsRegistry, createLogger, labelsToRecord } from "@strata/core";
import { STALE_NAN } from "@strata/formats";
import { prompbRemote, writev2 } from "@strata/protocol";
import { RemoteWriteFanout, ScrapeManager, WriteRequestV1Builder, WriteRequestV2Builder, encodeLabelsV1, parseScrapeConfig } from "@strata/scrape";
import { tempDir } from "../../../test/lib/procs.js";
import { startReceiver, waitUntil, type Receiver } from "../../../test/lib/rw-receiver.js";

const log = createLogger({ name: "test", level: "error" });

describe("remote write encoders", () => {
  const labels = [
    { name: "__name__", value: "m" },
    { name: "job", value: "j" },
    { name: "ü", value: "välue" },
  ];
  const samples: [number, number][] = [
    [1_700_000_000_123, 1.5],
    [-5, -0],
    [0, STALE_NAN],
    // The same timestamp again (its encoding is reused), then an earlier one again.
    [0, 7],
    [1_700_000_000_123, 8],
    [1_700_000_000_123, -1e-300],
  ];
  const bits = (v: number) => Buffer.from(new Float64Array([v]).buffer).readBigUInt64LE(0);

  it("1.0: decodes with the generated prompb code, stale marker bits kept", () => {
    const b = new WriteRequestV1Builder();
    const enc = encodeLabelsV1(labels);
    for (const [t, v] of samples) b.add(enc, t, v);
    const wr = fromBinary(prompbRemote.WriteRequestSchema, b.view());
    expect(wr.timeseries).toHaveLength(samples.length);
    expect(wr.timeseries.map((ts) => ts.labels.map((l) => [l.name, l.value]))[0]).toEqual(labels.map((l) => [l.name, l.value]));
    expect(wr.timeseries.map((ts) => Number(ts.samples[0]!.timestamp))).toEqual(samples.map((s) => s[0]));
    expect(wr.timeseries.map((ts) => bits(ts.samples[0]!.value))).toEqual(samples.map((s) => bits(s[1])));
  });

  it("2.0: decodes with the generated io.prometheus.write.v2 code", () => {
    const b = new WriteRequestV2Builder();
    const enc = encodeLabelsV1(labels);
    for (const [t, v] of samples) b.add(enc, t, v);
    b.add(encodeLabelsV1([{ name: "__name__", value: "other" }]), 7, 8);
    const req = fromBinary(writev2.RequestSchema, b.finish());
    expect(req.symbols[0]).toBe("");
    const decoded = req.timeseries.map((ts) => {
      const out: Record<string, string> = {};
      for (let i = 0; i < ts.labelsRefs.length; i += 2) out[req.symbols[ts.labelsRefs[i]!]!] = req.symbols[ts.labelsRefs[i + 1]!]!;
      return { labels: out, t: Number(ts.samples[0]!.timestamp), v: bits(ts.samples[0]!.value) };
    });
    expect(decoded[0]).toEqual({ labels: labelsToRecord(labels), t: samples[0]![0], v: bits(1.5) });
    expect(decoded[2]!.v).toBe(bits(STALE_NAN));
    expect(decoded.slice(1, samples.length).map((d) => [d.t, d.v])).toEqual(samples.slice(1).map(([t, v]) => [t, bits(v)]));
    expect(decoded[samples.length]).toEqual({ labels: { __name__: "other" }, t: 7, v: bits(8) });
    expect(new Set(req.symbols).size).toBe(req.symbols.length);
  });

  it("label runs a SeriesCache stores with the target's fields as markers encode as the full labels (1.0 and 2.0)", async () => {
    const { SeriesCache, hashBytes } = await import("@strata/scrape");
    const instance = { name: "instance", value: "host:9100" };
    const job = { name: "job", value: "node" };
    const c = new SeriesCache(1, [encodeLabelsV1([instance]), encodeLabelsV1([job])]);
    const sets = [
      [{ name: "__name__", value: "a" }, instance, job],
      [{ name: "__name__", value: "b" }, { name: "cpu", value: "0" }, instance, { name: "job", value: "other" }],
      [{ name: "__name__", value: "c" }],
      [{ name: "__name__", value: "d".repeat(300) }, { name: "exported_job", value: "x" }, instance, job, { name: "zone", value: "z" }],
      [{ name: "__name__", value: "e".repeat(115) }, job],
      [{ name: "__name__", value: "f".repeat(116) }, job],
      // Metric names interned past the one-byte markers (0xef), past the two-byte ones (4335 in all), and seen again.
      ...Array.from({ length: 4500 }, (_, i) => [{ name: "__name__", value: `m${i % 4400}` }, { name: "cpu", value: String(i) }, job]),
    ];
    sets.forEach((set, i) => {
      const key = Buffer.from(`k${i}`);
      c.add(key, 0, key.length, hashBytes(key, 0, key.length), { perUrl: [encodeLabelsV1(set)] }, 1);
    });
    expect(c.labStored[0]).toBeLessThan(c.labLen[0]!);
    // Name fields: a marker where interned (1 byte for the first names, 2 later), in place when too long or the table is full.
    // Bytes saved per series: a field's length less its marker's.
    const saved = (l: { name: string; value: string }, marker: number) => encodeLabelsV1([l]).length - marker;
    const name = (value: string) => ({ name: "__name__", value });
    const [jobSaved, m] = [saved(job, 1), (i: number) => name(`m${i}`)];
    expect([2, 3, 4, 5, 6, 237, 238, 4333, 4334, 4406].map((id) => c.labLen[id]! - c.labStored[id]!)).toEqual([
      saved(name("c"), 1),
      saved(instance, 1) + jobSaved, // a name too long for the table's one-byte field length
      saved(name("e".repeat(115)), 1) + jobSaved,
      jobSaved,
      saved(m(0), 1) + jobSaved,
      saved(m(231), 1) + jobSaved, // the last one-byte marker (fields[238])
      saved(m(232), 2) + jobSaved,
      saved(m(4327), 2) + jobSaved, // the last field
      jobSaved, // the table is full: in place
      saved(m(0), 1) + jobSaved, // a name seen before
    ]);
    for (const [mk, out] of [
      [() => new WriteRequestV1Builder(), (b: WriteRequestV1Builder) => b.view()],
      [() => new WriteRequestV2Builder(), (b: WriteRequestV2Builder) => b.finish()],
    ] as const) {
      const viaCache = mk() as WriteRequestV1Builder & WriteRequestV2Builder;
      const direct = mk() as WriteRequestV1Builder & WriteRequestV2Builder;
      sets.forEach((set, id) => {
        const [at, stored, len] = [c.off[id]! + c.labRel[id]!, c.labStored[id]!, c.labLen[id]!];
        if (stored === len) viaCache.addRange(c.arena, at, len, 1000 + id, id);
        else viaCache.addExpanded(c.arena, at, stored, len, c.fields, 1000 + id, id);
        direct.add(encodeLabelsV1(set), 1000 + id, id);
      });
      expect(Buffer.from(out(viaCache)).toString("hex")).toBe(Buffer.from(out(direct)).toString("hex"));
    }
  });

  it("2.0: symbols interned by their bytes through table growth, across reused batches", () => {
    const b = new WriteRequestV2Builder();
    for (let round = 0; round < 3; round++) {
      const want: Record<string, string>[] = [];
      for (let i = 0; i < 2500; i++) {
        const l = [
          { name: "__name__", value: `m${round}` },
          { name: `k${i % 7}`, value: `v${i}ü` },
        ];
        b.add(encodeLabelsV1(l), i, i);
        want.push(labelsToRecord(l));
      }
      const req = fromBinary(writev2.RequestSchema, b.finish());
      expect(req.symbols[0]).toBe("");
      expect(new Set(req.symbols).size).toBe(req.symbols.length);
      const got = req.timeseries.map((ts) => {
        const out: Record<string, string> = {};
        for (let i = 0; i < ts.labelsRefs.length; i += 2) out[req.symbols[ts.labelsRefs[i]!]!] = req.symbols[ts.labelsRefs[i + 1]!]!;
        return out;
      });
      expect(got).toEqual(want);
      b.reset();
    }
  });
});

describe("service discovery", () => {
  const dir = tempDir("sd");
  let rcv: Receiver;
  let sd: Server;
  let sdUrl = "";
  let sdBody = "[]";
  const managers: ScrapeManager[] = [];
  const fanouts: RemoteWriteFanout[] = [];

  beforeAll(async () => {
    rcv = await startReceiver();
    sd = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(sdBody);
    });
    await new Promise<void>((r) => sd.listen(0, "127.0.0.1", () => r()));
    const a = sd.address();
    sdUrl = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/targets`;
  });
  afterAll(async () => {
    for (const m of managers) await m.stop();
    for (const f of fanouts) await f.close();
    await rcv.close();
    await new Promise((r) => sd.close(r));
    dir.remove();
  });

  const manager = async (yaml: string, dnsServers?: string[]): Promise<ScrapeManager> => {
    const fanout = new RemoteWriteFanout({ targets: [{ url: rcv.url }], tmpDataPath: join(dir.path, `q${fanouts.length}`), maxDiskUsagePerURL: 0, version: 1, log, metrics: new MetricsRegistry() });
    fanouts.push(fanout);
    const m = new ScrapeManager({ fanout, log, metrics: new MetricsRegistry(), maxScrapeBytes: 1 << 20, ...(dnsServers !== undefined ? { dnsServers } : {}) });
    managers.push(m);
    await m.apply(parseScrapeConfig(yaml, join(dir.path, "prometheus.yml")));
    return m;
  };
  const urls = (m: ScrapeManager) => m.activeTargets().map((l) => l.target.url).sort();

  it("file_sd: JSON and YAML files by pattern, re-read when they change, with __meta_filepath", async () => {
    writeFileSync(join(dir.path, "a.json"), JSON.stringify([{ targets: ["127.0.0.1:1"], labels: { team: "a" } }]));
    writeFileSync(join(dir.path, "b.yml"), "- targets: ['127.0.0.1:2']\n");
    const m = await manager(`scrape_configs:\n  - job_name: f\n    scrape_interval: 1h\n    file_sd_configs: [{ files: ["*.json", "b.yml"] }]\n`);
    await waitUntil("targets from both files", () => urls(m).length === 2);
    expect(urls(m)).toEqual(["http://127.0.0.1:1/metrics", "http://127.0.0.1:2/metrics"]);
    const t1 = m.activeTargets().find((l) => l.target.url.includes(":1/"))!;
    expect(labelsToRecord(t1.target.labels)).toEqual({ instance: "127.0.0.1:1", job: "f", team: "a" });
    expect(labelsToRecord(t1.target.discoveredLabels)["__meta_filepath"]).toBe(join(dir.path, "a.json"));
    writeFileSync(join(dir.path, "b.yml"), "- targets: ['127.0.0.1:3', '127.0.0.1:4']\n");
    await waitUntil("the changed file", () => urls(m).length === 3);
    expect(urls(m)).toEqual(["http://127.0.0.1:1/metrics", "http://127.0.0.1:3/metrics", "http://127.0.0.1:4/metrics"]);
  });

  it("http_sd: targets from a URL, refreshed, with __meta_url", async () => {
    sdBody = JSON.stringify([{ targets: ["127.0.0.1:5"], labels: { dc: "x" } }]);
    const m = await manager(`scrape_configs:\n  - job_name: h\n    scrape_interval: 1h\n    http_sd_configs: [{ url: "${sdUrl}", refresh_interval: 200ms }]\n`);
    await waitUntil("http_sd targets", () => urls(m).length === 1);
    expect(labelsToRecord(m.activeTargets()[0]!.target.discoveredLabels)).toMatchObject({ __meta_url: sdUrl, dc: "x" });
    sdBody = JSON.stringify([{ targets: ["127.0.0.1:6", "127.0.0.1:7"] }]);
    await waitUntil("refreshed http_sd targets", () => urls(m).join() === "http://127.0.0.1:6/metrics,http://127.0.0.1:7/metrics");
  });

  it("dns_sd: A records through the system resolver", async () => {
    const m = await manager(`scrape_configs:\n  - job_name: d\n    scrape_interval: 1h\n    dns_sd_configs: [{ names: [localhost], type: A, port: 9999 }]\n`);
    await waitUntil("dns_sd targets", () => urls(m).length === 1);
    expect(urls(m)).toEqual(["http://127.0.0.1:9999/metrics"]);
    expect(labelsToRecord(m.activeTargets()[0]!.target.discoveredLabels)["__meta_dns_name"]).toBe("localhost");
  });

  it("dns_sd: SRV and A records from the DNS server of -promscrape.dnsServers (a test server on 127.0.0.1)", async () => {
    const dns = await startDnsServer({
      "_metrics._tcp.example.test": { srv: [{ target: "node-a.example.test", port: 9100 }, { target: "node-b.example.test", port: 9200 }] },
      "web.example.test": { a: ["127.0.0.7", "127.0.0.8"] },
    });
    try {
      const m = await manager(
        `scrape_configs:\n  - job_name: srv\n    scrape_interval: 1h\n    dns_sd_configs: [{ names: [_metrics._tcp.example.test], type: SRV }, { names: [web.example.test], type: A, port: 8080 }]\n`,
        [`127.0.0.1:${dns.port}`],
      );
      await waitUntil("dns_sd targets", () => urls(m).length === 4);
      expect(urls(m)).toEqual(["http://127.0.0.7:8080/metrics", "http://127.0.0.8:8080/metrics", "http://node-a.example.test:9100/metrics", "http://node-b.example.test:9200/metrics"]);
      const a = m.activeTargets().find((l) => l.target.url.includes("node-a"))!;
      expect(labelsToRecord(a.target.discoveredLabels)).toMatchObject({
        __address__: "node-a.example.test:9100",
        __meta_dns_name: "_metrics._tcp.example.test",
        __meta_dns_srv_record_target: "node-a.example.test",
        __meta_dns_srv_record_port: "9100",
      });
      expect(dns.questions).toContain("_metrics._tcp.example.test/33");
    } finally {
      dns.close();
    }
  });
});

/**
 * A DNS server on 127.0.0.1 answering SRV (type 33) and A (type 1) questions from a table
 * (RFC 1035 messages, names uncompressed); other names get NXDOMAIN.
 */
async function startDnsServer(zone: Record<string, { srv?: { target: string; port: number }[]; a?: string[] }>): Promise<{ port: number; questions: string[]; close(): void }> {
  const questions: string[] = [];
  const sock: UdpSocket = createSocket("udp4");
  const encodeName = (name: string): Buffer => Buffer.concat([...name.split(".").filter((x) => x !== "").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  sock.on("message", (msg, peer) => {
    let i = 12;
    const labels: string[] = [];
    while (msg[i]! !== 0) {
      labels.push(msg.subarray(i + 1, i + 1 + msg[i]!).toString());
      i += msg[i]! + 1;
    }
    const question = msg.subarray(12, i + 5);
    const type = msg.readUInt16BE(i + 1);
    const name = labels.join(".");
    questions.push(`${name}/${type}`);
    const z = zone[name];
    const answers: Buffer[] = [];
    const rr = (rtype: number, rdata: Buffer): Buffer => {
      const h = Buffer.alloc(10);
      h.writeUInt16BE(rtype, 0);
      h.writeUInt16BE(1, 2);
      h.writeUInt32BE(30, 4);
      h.writeUInt16BE(rdata.length, 8);
      return Buffer.concat([encodeName(name), h, rdata]);
    };
    if (z !== undefined && type === 33) {
      for (const s of z.srv ?? []) {
        const d = Buffer.alloc(6);
        d.writeUInt16BE(10, 0);
        d.writeUInt16BE(5, 2);
        d.writeUInt16BE(s.port, 4);
        answers.push(rr(33, Buffer.concat([d, encodeName(s.target)])));
      }
    } else if (z !== undefined && type === 1) {
      for (const a of z.a ?? []) answers.push(rr(1, Buffer.from(a.split(".").map(Number))));
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180 | (z === undefined ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    sock.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  return { port: sock.address().port, questions, close: () => sock.close() };
}
