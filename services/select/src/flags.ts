import { availableParallelism, totalmem } from "node:os";
import { clusterTlsFlags } from "@strata/cluster";
import { defineFlags, flag } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";

export const selectFlags = defineFlags({
  httpListenAddr: flag.string(":8481", "TCP address to listen on for HTTP requests"),
  storageNode: flag.stringList([], "Addresses of storage nodes' select ports (host:8401), comma-separated or repeated"),
  replicationFactor: flag.int(1, "How many copies of each series the storage nodes hold; answers stay complete while fewer than this many nodes are down"),
  "dedup.minScrapeInterval": flag.duration("0s", "Leave only the last sample in each interval per series at query time (for replicated Prometheus pairs); 0 disables"),
  "search.maxQueryDuration": flag.duration("30s", "The maximum duration of a query; the timeout parameter may only lower it"),
  "search.maxConcurrentRequests": flag.int(8, "The maximum number of queries running at once; more wait in a queue"),
  "search.logSlowQueryDuration": flag.duration("5s", "Log queries slower than this (with query, range, step, tenant and duration) and count them in strata_select_slow_queries_total; 0 disables"),
  "search.maxQueueDuration": flag.duration("10s", "How long a query may wait for a free slot before it fails with 503"),
  "search.maxSeries": flag.int(300_000, "The maximum number of series one query may select"),
  "search.maxSamplesPerQuery": flag.int(1_000_000_000, "The maximum number of samples one query may process"),
  "search.maxPointsPerTimeseries": flag.int(30_000, "The maximum number of points per series a range query may return"),
  "search.maxPointsSubqueryPerTimeseries": flag.int(100_000, "The maximum number of points per series a subquery may evaluate; a query with a bigger subquery fails with 422"),
  "search.maxMemoryPerQuery": flag.bytes(0, "The maximum memory one query may use by its estimate before evaluation and by count while it runs; a query needing more fails with 422. 0: only -search.maxMemoryTotal limits it"),
  "search.maxMemoryTotal": flag.bytes(Math.floor(totalmem() / 4 / 1024 ** 2) * 1024 ** 2, "The memory all running queries may use together (their estimates, grown by what they count while running); a query that does not fit fails with 422. 0: no limit (default: a quarter of the system memory)"),
  "search.maxExportSeries": flag.int(10_000_000, "The maximum number of series /api/v1/export and /federate may return"),
  "search.maxSeriesPerAPICall": flag.int(100_000, "The most series /api/v1/series returns; a longer answer is cut with a warning and isPartial (0: no cap)"),
  "search.maxTagKeys": flag.int(100_000, "The most label names /api/v1/labels returns; a longer answer is cut with a warning and isPartial (0: no cap)"),
  "search.maxTagValues": flag.int(100_000, "The most values /api/v1/label/<name>/values returns; a longer answer is cut with a warning and isPartial (0: no cap)"),
  adminAuthKey: flag.string("", "Key (authKey=) of the all-tenant views /api/v1/status/top_queries and /api/v1/status/active_queries; empty: they answer 403"),
  "search.skipSlowReplicas": flag.bool(true, "Do not wait for the replicationFactor-1 slowest storage nodes: the others hold every series written with all its copies, so a hung or cut-off node does not stall queries. Rows acknowledged with fewer copies (strata_insert_rows_under_replicated_total on insert: fewer healthy nodes than replicationFactor when written) may be missing from such answers; set to false to always wait for every node"),
  "search.denyPartialResponse": flag.bool(false, "Fail queries with 503 instead of answering partially when storage nodes are unavailable"),
  "search.cacheTimestampOffset": flag.duration("5m", "Points newer than now minus this offset are never cached by the range-query result cache"),
  "search.disableCache": flag.bool(false, "Disable the range-query result cache"),
  "search.maxMetaCacheEntries": flag.int(10_000, "Answers of /api/v1/labels, /api/v1/label/<name>/values, /api/v1/metadata and /api/v1/series (up to 10000 series each) kept in memory; dropped whenever a storage node reports a new series, a delete, retention or a metadata change (0 disables the cache)"),
  "search.latencyOffset": flag.duration("0s", "Instant queries without a time parameter evaluate at now minus this offset (VictoriaMetrics uses 30s; 0 answers as Prometheus does)"),
  "search.lookbackDelta": flag.duration("5m", "How far back an instant vector selector looks for the last sample (Prometheus' --query.lookback-delta)"),
  // On 2 cores shared with storage nodes, measured slower than inline decoding (bench:query).
  "search.decodeWorkers": flag.int(availableParallelism() > 2 ? Math.min(4, availableParallelism() - 1) : 0, "Worker threads that decode storage blocks of wide searches off the event loop (0 decodes inline; default: cores-1 up to 4 when there are more than 2 cores)"),
  "search.decodeWorkerMinSamples": flag.int(100_000, "Searches with fewer samples per worker than this decode inline (posting to a worker costs more than it saves)"),
  "vmalert.proxyURL": flag.string("", "URL of the alert service (e.g. http://alert:8880): /select/<tenant>/prometheus/api/v1/{rules,alerts} are forwarded to it, so Grafana shows rules and alerts; credentials in the URL (https://user:pass@alert:8880) are sent as basic auth, else the client's Authorization header is passed on"),
  maxRequestBodySize: flag.bytes(16 * 1024 * 1024, "The maximum size of a request body (form-encoded POST parameters)"),
  loggerLevel: flag.string("INFO", "Minimum level of log lines: DEBUG, INFO, WARN, ERROR"),
  deleteAuthKey: flag.string("", "Key that /api/v1/admin/tsdb/delete_series wants as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
  flagsAuthKey: flag.string("", "Key that /flags and /api/v1/status/flags want as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
  ...httpSecurityFlags,
  ...clusterTlsFlags,
});
