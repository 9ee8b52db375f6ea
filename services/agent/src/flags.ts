import { defineFlags, flag, flagsPageFlags, type Flag } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";

/**
 * A per -remoteWrite.url list as vmagent has them: values by position, empty ones kept
 * (`-remoteWrite.bearerToken=,tok` sets a token for the second URL only); perUrl() reads it.
 */
function perUrlList(description: string): Flag<string[]> {
  return flag.stringList([], description, { keepEmpty: true });
}

/** The i-th value of a per-URL list, or the only one when a single value is given (vmagent's rule). */
export function perUrl(values: readonly string[], i: number): string {
  return values[i] ?? (values.length === 1 ? values[0]! : "");
}

export const agentFlags = defineFlags({
  httpListenAddr: flag.string(":8429", "HTTP address for push receivers (/api/v1/write, /api/v1/import, …), /targets, /api/v1/targets, /service-discovery, /metrics, /health, /-/reload."),
  // The process flag with the agent's own default: its live heap is small (series live in typed
  // arrays) while every scrape allocates request objects and buffers, so collecting at 2x the
  // live size keeps RSS down for little CPU (docs/benchmarks.md, "Agent").
  "memory.heapGrowthPercent": flag.int(100, "How far (percent) the JS heap may grow past its live size before the next full GC, like Go's GOGC (0: V8's own heuristics)."),
  "promscrape.config": flag.string("", "Prometheus scrape config file (scrape_configs, global.scrape_interval, global.external_labels); reloaded on SIGHUP and POST /-/reload."),
  dryRun: flag.bool(false, "Check -promscrape.config (and the relabel configs) and exit: 0 when valid, 1 with the problem otherwise."),
  "promscrape.maxScrapeSize": flag.bytes(16 * 1024 * 1024, "Largest scrape body (after gzip); a bigger one fails the scrape."),
  "promscrape.cluster.membersCount": flag.int(1, "Number of agents sharing the targets: each scrapes the targets whose hash lands on its -promscrape.cluster.memberNum."),
  "promscrape.cluster.memberNum": flag.string("0", "This agent's number among -promscrape.cluster.membersCount (0-based); a Kubernetes StatefulSet pod name such as strata-agent-2 gives its number."),
  "promscrape.cluster.replicationFactor": flag.int(1, "How many agents of the cluster scrape each target."),
  "promscrape.cluster.memberLabel": flag.string(
    "",
    "If non-empty, a label of this name with the -promscrape.cluster.memberNum value (as given) is added to every scraped series, e.g. vmagent_instance=\"0\" (sharding hashes the target labels without it).",
  ),
  "remoteWrite.url": flag.stringList([], "Remote write URL; repeat for several: every URL gets all data, each through its own durable queue. Without it, the remote_write URLs of -promscrape.config are used."),
  "remoteWrite.tmpDataPath": flag.string("strata-agent-remotewrite-data", "Directory of the per-URL durable queues (data survives restarts and SIGKILL)."),
  "remoteWrite.maxDiskUsagePerURL": flag.bytes(0, "Disk bound of one URL's queue (0: unbounded); past it the oldest data is dropped and counted."),
  "remoteWrite.relabelConfig": flag.string("", "Relabel rules file applied to all data before any URL."),
  "remoteWrite.urlRelabelConfig": perUrlList("Relabel rules file per -remoteWrite.url (same order; empty for none)."),
  "remoteWrite.version": flag.int(1, "Remote write protocol version sent: 1 (1.0, the default) or 2 (2.0)."),
  "remoteWrite.sendTimeout": flag.duration("1m", "Deadline of one remote write request."),
  "remoteWrite.retryMinInterval": flag.duration("1s", "First delay before retrying a failed send; doubles up to -remoteWrite.retryMaxInterval."),
  "remoteWrite.retryMaxInterval": flag.duration("1m", "Longest delay between retries (Retry-After of a 429/503 answer overrides it)."),
  "remoteWrite.maxBlockSize": flag.bytes(8 * 1024 * 1024, "Largest uncompressed remote write request when queued blocks are merged."),
  "remoteWrite.flushInterval": flag.duration("1s", "While a URL keeps up, queued blocks are sent at most this often, merged into one request (at once when the backlog is large)."),
  "remoteWrite.fsyncInterval": flag.duration("1s", "How often queue files are fsynced (a write is in the file before it is acknowledged either way)."),
  "remoteWrite.basicAuth.username": perUrlList("Basic auth username per -remoteWrite.url (same order; one value applies to every URL)."),
  "remoteWrite.basicAuth.password": perUrlList("Basic auth password per -remoteWrite.url; file:///path reads it from a file. Never logged."),
  "remoteWrite.bearerToken": perUrlList("Bearer token per -remoteWrite.url; file:///path reads it from a file. Never logged."),
  "remoteWrite.tlsCAFile": perUrlList("CA file (PEM) that verifies an https:// -remoteWrite.url (same order; one value applies to every URL); empty: the system CAs."),
  "remoteWrite.tlsCertFile": perUrlList("Client certificate (PEM) presented to an https:// -remoteWrite.url."),
  "remoteWrite.tlsKeyFile": perUrlList("Key of -remoteWrite.tlsCertFile."),
  "remoteWrite.tlsServerName": perUrlList("Server name checked in the certificate of an https:// -remoteWrite.url (and sent as SNI)."),
  // Bare -remoteWrite.tlsInsecureSkipVerify means true (for every URL), as in vmagent.
  "remoteWrite.tlsInsecureSkipVerify": { ...perUrlList("true: do not verify the certificate of an https:// -remoteWrite.url (per URL, same order)."), isBool: true },
  "promscrape.dnsServers": flag.stringList([], "DNS servers (ip or ip:port) that dns_sd_configs ask instead of the system resolver's."),
  reloadAuthKey: flag.string("", "Key that /-/reload wants as the authKey query arg; overrides -httpAuth.* there; file:///path reads it from a file. Never logged."),
  maxInsertRequestSize: flag.bytes(32 * 1024 * 1024, "Largest push request body, compressed and decompressed (413 past it)."),
  "import.maxLineLen": flag.bytes(16 * 1024 * 1024, "Longest line of a line-based import format."),
  maxLabelsPerTimeseries: flag.int(40, "Reject pushed series with more labels than this (400)."),
  loggerLevel: flag.string("INFO", "Minimum log level: DEBUG, INFO, WARN, ERROR."),
  ...flagsPageFlags,
  ...httpSecurityFlags,
});
