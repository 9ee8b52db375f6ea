import { Writable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BadDataError,
  createLogger,
  defineFlags,
  flag,
  formatHelp,
  httpStatusOf,
  MetricsRegistry,
  parseFlags,
  registerProcessMetrics,
  TimeoutError,
  ExecutionError,
  UnavailableError,
} from "@strata/core";

const specs = defineFlags({
  httpListenAddr: flag.string(":8480", "TCP address to listen on for HTTP requests"),
  storageNode: flag.stringList([], "Addresses of storage nodes"),
  perUrl: flag.stringList([], "Values by position", { keepEmpty: true }),
  replicationFactor: flag.int(1, "Replication factor"),
  "dedup.minScrapeInterval": flag.duration("0s", "Leave only the last sample per interval"),
  retentionPeriod: flag.duration("1", "Data retention", { bareNumberMs: 31 * 86_400_000 }),
  maxInsertRequestSize: flag.bytes(32 * 1024 * 1024, "Maximum request size"),
  disableRerouting: flag.bool(false, "Do not reroute"),
  ratio: flag.float(0.5, "A ratio"),
});

describe("parseFlags", () => {
  const f = (argv: string[]) => parseFlags(specs, argv).values;
  it("uses defaults", () => {
    expect(f([])).toEqual({
      httpListenAddr: ":8480",
      storageNode: [],
      perUrl: [],
      replicationFactor: 1,
      "dedup.minScrapeInterval": 0,
      retentionPeriod: 31 * 86_400_000,
      maxInsertRequestSize: 33_554_432,
      disableRerouting: false,
      ratio: 0.5,
    });
  });
  it.each([
    [["-httpListenAddr=:9000"], "httpListenAddr", ":9000"],
    [["--httpListenAddr=:9000"], "httpListenAddr", ":9000"],
    [["-httpListenAddr", ":9000"], "httpListenAddr", ":9000"],
    [["-storageNode=a:8400,b:8400"], "storageNode", ["a:8400", "b:8400"]],
    [["-storageNode=a:8400", "-storageNode=b:8400,c:8400"], "storageNode", ["a:8400", "b:8400", "c:8400"]],
    [["-storageNode=,a:8400,"], "storageNode", ["a:8400"]],
    [["-perUrl=,tok"], "perUrl", ["", "tok"]],
    [["-perUrl=a", "-perUrl=", "-perUrl=c"], "perUrl", ["a", "", "c"]],
    [["-replicationFactor=2"], "replicationFactor", 2],
    [["-dedup.minScrapeInterval=15s"], "dedup.minScrapeInterval", 15_000],
    [["-retentionPeriod=30d"], "retentionPeriod", 30 * 86_400_000],
    [["-retentionPeriod=3"], "retentionPeriod", 3 * 31 * 86_400_000],
    [["-maxInsertRequestSize=64MiB"], "maxInsertRequestSize", 64 * 1024 * 1024],
    [["-maxInsertRequestSize=1GB"], "maxInsertRequestSize", 1e9],
    [["-disableRerouting"], "disableRerouting", true],
    [["-disableRerouting=false"], "disableRerouting", false],
    [["--ratio=0.25"], "ratio", 0.25],
  ] as const)("%j", (argv, name, want) => {
    expect(f([...argv])[name]).toEqual(want);
  });
  it.each([
    [["-nope=1"], /unknown flag -nope/],
    [["-replicationFactor=two"], /invalid value "two" for flag -replicationFactor: want an integer/],
    [["-disableRerouting=maybe"], /want true or false/],
    [["-dedup.minScrapeInterval=5x"], /flag -dedup.minScrapeInterval/],
    [["-maxInsertRequestSize=lots"], /flag -maxInsertRequestSize/],
    [["-httpListenAddr"], /missing value/],
  ])("rejects %j", (argv, msg) => {
    expect(() => f(argv)).toThrow(BadDataError);
    expect(() => f(argv)).toThrow(msg);
  });
  it("-help lists every flag with its default", () => {
    expect(parseFlags(specs, ["-help"]).help).toBe(true);
    expect(parseFlags(specs, ["--help"]).help).toBe(true);
    const text = formatHelp(specs, "strata-insert", "accepts data");
    for (const name of Object.keys(specs)) expect(text).toContain(`-${name} `);
    expect(text).toContain('(default ":8480")');
    expect(text).toContain("(default 32MiB)");
    expect(text).toContain("(default 1)");
  });
  it("random argv only throws BadDataError", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom("-replicationFactor", "-storageNode=", "--ratio=x", "-disableRerouting=1")), { maxLength: 5 }), (argv) => {
        try {
          parseFlags(specs, argv);
        } catch (err) {
          expect(err).toBeInstanceOf(BadDataError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("errors map to HTTP status at the edge", () => {
  it.each([
    [new BadDataError("x"), 400],
    [new ExecutionError("x"), 422],
    [new TimeoutError("x"), 503],
    [new UnavailableError("x"), 503],
    [new Error("x"), 500],
  ])("%s → %d", (err, status) => expect(httpStatusOf(err)).toBe(status));
});

describe("MetricsRegistry", () => {
  it("renders the text exposition format", () => {
    const r = new MetricsRegistry();
    r.counter('strata_rows_total{type="promrw"}', "Rows received").add(5);
    r.counter('strata_rows_total{type="influx"}').inc();
    r.gauge("strata_buffer_bytes", "Buffered bytes").set(1024);
    const h = r.histogram('strata_request_duration_seconds{path="/write"}', "Request duration", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(r.render()).toBe(
      [
        "# HELP strata_buffer_bytes Buffered bytes",
        "# TYPE strata_buffer_bytes gauge",
        "strata_buffer_bytes 1024",
        "# HELP strata_request_duration_seconds Request duration",
        "# TYPE strata_request_duration_seconds histogram",
        'strata_request_duration_seconds_bucket{path="/write",le="0.1"} 1',
        'strata_request_duration_seconds_bucket{path="/write",le="1"} 2',
        'strata_request_duration_seconds_bucket{path="/write",le="+Inf"} 3',
        'strata_request_duration_seconds_sum{path="/write"} 5.55',
        'strata_request_duration_seconds_count{path="/write"} 3',
        "# HELP strata_rows_total Rows received",
        "# TYPE strata_rows_total counter",
        'strata_rows_total{type="influx"} 1',
        'strata_rows_total{type="promrw"} 5',
        "",
      ].join("\n"),
    );
  });
  it("rejects a family registered with two types", () => {
    const r = new MetricsRegistry();
    r.counter("x_total");
    expect(() => r.gauge('x_total{a="b"}')).toThrow(/is a counter, not a gauge/);
  });
  it("exposes process metrics", () => {
    const r = new MetricsRegistry();
    registerProcessMetrics(r);
    const text = r.render();
    expect(text).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
  });
});

describe("createLogger", () => {
  it("writes one JSON object per line with level and component", async () => {
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split("\n").filter((l) => l !== ""));
        cb();
      },
    });
    const log = createLogger({ name: "test", destination: dest });
    log.info({ rows: 3 }, "stored");
    log.debug("hidden");
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: "info", component: "test", rows: 3, msg: "stored" });
    expect(typeof rec.time).toBe("string");
  });
});
