import { availableParallelism } from "node:os";
import { clusterTlsFlags } from "@strata/cluster";
import { DAY_MS, defineFlags, flag, flagsPageFlags } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";
import { importFlags } from "./import-flags.js";

export const insertFlags = defineFlags({
  // The process flag with insert's own default: its live JS heap is small (~17 MiB; the
  // raw-labels cache and the rows batches live in ArrayBuffers), and the buffers a request
  // leaves behind (its body, lz4 outputs, gRPC frames) that outlived a scavenge are freed only
  // by a full GC. At 300% insert held 20–30 MiB more of them at its peak; 100% collects them at
  // 2x the live heap (docs/benchmarks.md, "Insert and select memory at a million series").
  "memory.heapGrowthPercent": flag.int(100, "How far (percent) the JS heap may grow past its live size before the next full GC, like Go's GOGC (0: V8's own heuristics)."),
  httpListenAddr: flag.string(":8480", "HTTP address for ingestion (/insert/<tenant>/prometheus/...), /metrics, /health, /-/ready."),
  storageNode: flag.stringList([], "Storage nodes' insert addresses (host:port of -vminsertAddr), e.g. -storageNode=s1:8400,s2:8400."),
  replicationFactor: flag.int(1, "Each series is stored on this many distinct storage nodes."),
  disableRerouting: flag.bool(false, "Do not send a series to other nodes when its own nodes are down or slow (requests fail with 503 instead)."),
  maxLabelsPerTimeseries: flag.int(40, "Reject series with more labels than this (the request gets 400)."),
  maxLabelNameLen: flag.int(256, "Reject series with a label name longer than this many bytes."),
  maxLabelValueLen: flag.int(4096, "Reject series with a label value longer than this many bytes."),
  maxInsertRequestSize: flag.bytes(32 * 1024 * 1024, "Maximum size of a request body, compressed and decompressed (413 past it)."),
  maxConcurrentInserts: flag.int(Math.max(2, 2 * availableParallelism()), "Insert requests processed at once; others wait up to -insert.maxQueueDuration."),
  "insert.maxQueueDuration": flag.duration("1m", "How long a request waits for a -maxConcurrentInserts slot before it gets 429."),
  "cacheSize.remoteWriteLabels": flag.bytes(0, "Memory for canonical metric names of remote write series by their raw label bytes (0: 25% of the memory -memory.allowedPercent / -memory.allowedBytes allow): a known series skips label parsing and validation. About 300 bytes per series: size it for the series of every sender."),
  "storageNode.maxBufferSize": flag.bytes(64 * 1024 * 1024, "Bytes in flight to one storage node before writers wait (then reroute)."),
  "storageNode.writeTimeout": flag.duration("30s", "Deadline of one write to a storage node."),
  retentionPeriod: flag.duration("0", "Samples older than this are not sent to storage and are counted in strata_rows_ignored_total{reason=\"small_timestamp\"} (and left out of remote write 2.0's Samples-Written). 0: the storage nodes' own -retentionPeriod, which each tells insert in its health check — set it only to keep a narrower window here. A bare number means months (31 days).", {
    bareNumberMs: 31 * DAY_MS,
  }),
  futureRetention: flag.duration("0", "Samples more than this ahead of now are not sent to storage and are counted in strata_rows_ignored_total{reason=\"big_timestamp\"}. 0: the storage nodes' own -futureRetention (default 2d)."),
  loggerLevel: flag.string("INFO", "Minimum log level: DEBUG, INFO, WARN, ERROR."),
  ...importFlags,
  ...flagsPageFlags,
  ...httpSecurityFlags,
  ...clusterTlsFlags,
});
