import { defineFlags, flag, flagsPageFlags } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";

/** TLS towards one of the service's peers: vmalert's -<prefix>.tls* flags. */
function clientTlsFlags<P extends string>(prefix: P, what: string) {
  return {
    [`${prefix}.tlsCAFile`]: flag.string("", `CA file (PEM) to verify the certificate of ${what}; empty: the system's CAs`),
    [`${prefix}.tlsCertFile`]: flag.string("", `Client certificate file (PEM) to present to ${what}`),
    [`${prefix}.tlsKeyFile`]: flag.string("", `Client key file (PEM) for -${prefix}.tlsCertFile`),
    [`${prefix}.tlsServerName`]: flag.string("", `Server name to verify the certificate of ${what} against; default the URL's host`),
    [`${prefix}.tlsInsecureSkipVerify`]: flag.bool(false, `Do not verify the certificate of ${what} (tests only)`),
  } as Record<`${P}.${"tlsCAFile" | "tlsCertFile" | "tlsKeyFile" | "tlsServerName"}`, ReturnType<typeof flag.string>> & Record<`${P}.tlsInsecureSkipVerify`, ReturnType<typeof flag.bool>>;
}

/** vmalert's flag names, defaults where Strata behaves the same. */
export const alertFlags = defineFlags({
  httpListenAddr: flag.string(":8880", "TCP address to listen on for HTTP requests"),
  rule: flag.stringList([], "Path or glob of Prometheus rule files (e.g. /etc/strata/rules/*.yml); repeated or comma-separated"),
  "rule.validateTemplates": flag.bool(true, "Validate annotation and label templates when loading rules (always on: a template Strata cannot render fails the load)"),
  "rule.resendDelay": flag.duration("0s", "Minimum time before a firing alert is sent to Alertmanager again"),
  "rule.queryOffset": flag.duration("0s", "How far back from the evaluation time rules query, for groups without query_offset (Prometheus' rule_query_offset)"),
  evaluationInterval: flag.duration("1m", "How often groups without an interval of their own are evaluated"),
  dryRun: flag.bool(false, "Load and validate the rule files, print what is wrong, and exit (0 when valid)"),
  test: flag.stringList([], "Run Prometheus rule unit-test files (promtool test rules format) with Strata's PromQL engine, print the result, and exit (1 when a test fails)"),

  "datasource.url": flag.string("", "Prometheus-compatible query API the rules read from, e.g. http://select:8481/select/0/prometheus"),
  "datasource.basicAuth.username": flag.string("", "Basic auth username for -datasource.url"),
  "datasource.basicAuth.password": flag.string("", "Basic auth password for -datasource.url; file:///path reads it from a file. Never logged."),
  "datasource.bearerToken": flag.string("", "Bearer token for -datasource.url; file:///path reads it from a file. Never logged."),
  "datasource.basicAuth.passwordFile": flag.string("", "File with the basic auth password for -datasource.url (vmalert's name; the same as -datasource.basicAuth.password=file:///path)"),
  "datasource.bearerTokenFile": flag.string("", "File with the bearer token for -datasource.url (vmalert's name; the same as -datasource.bearerToken=file:///path)"),
  "datasource.queryTimeout": flag.duration("30s", "Timeout of one datasource query"),
  ...clientTlsFlags("datasource", "-datasource.url"),

  "remoteWrite.url": flag.string("", "Remote write URL for recording-rule results and the ALERTS / ALERTS_FOR_STATE series, e.g. http://insert:8480/insert/0/prometheus (/api/v1/write is added when the path does not end with it)"),
  "remoteWrite.basicAuth.username": flag.string("", "Basic auth username for -remoteWrite.url"),
  "remoteWrite.basicAuth.password": flag.string("", "Basic auth password for -remoteWrite.url; file:///path reads it from a file. Never logged."),
  "remoteWrite.bearerToken": flag.string("", "Bearer token for -remoteWrite.url; file:///path reads it from a file. Never logged."),
  "remoteWrite.basicAuth.passwordFile": flag.string("", "File with the basic auth password for -remoteWrite.url (vmalert's name; the same as -remoteWrite.basicAuth.password=file:///path)"),
  "remoteWrite.bearerTokenFile": flag.string("", "File with the bearer token for -remoteWrite.url (vmalert's name; the same as -remoteWrite.bearerToken=file:///path)"),
  ...clientTlsFlags("remoteWrite", "-remoteWrite.url"),
  "remoteWrite.maxQueueSize": flag.int(1_000_000, "The maximum number of samples waiting to be written; beyond it results are dropped, counted and logged"),
  "remoteWrite.maxBatchSize": flag.int(10_000, "The maximum number of samples in one remote write request"),
  "remoteWrite.flushInterval": flag.duration("1s", "How often queued samples are written"),
  "remoteWrite.retryMinInterval": flag.duration("1s", "The first delay before retrying a failed write (doubling up to -remoteWrite.retryMaxInterval)"),
  "remoteWrite.retryMaxInterval": flag.duration("30s", "The longest delay between write retries"),

  "remoteRead.url": flag.string("", "Prometheus-compatible query API to restore alert state from ALERTS_FOR_STATE at start, e.g. http://select:8481/select/0/prometheus"),
  "remoteRead.basicAuth.username": flag.string("", "Basic auth username for -remoteRead.url"),
  "remoteRead.basicAuth.password": flag.string("", "Basic auth password for -remoteRead.url; file:///path reads it from a file. Never logged."),
  "remoteRead.bearerToken": flag.string("", "Bearer token for -remoteRead.url; file:///path reads it from a file. Never logged."),
  "remoteRead.basicAuth.passwordFile": flag.string("", "File with the basic auth password for -remoteRead.url (vmalert's name; the same as -remoteRead.basicAuth.password=file:///path)"),
  "remoteRead.bearerTokenFile": flag.string("", "File with the bearer token for -remoteRead.url (vmalert's name; the same as -remoteRead.bearerToken=file:///path)"),
  ...clientTlsFlags("remoteRead", "-remoteRead.url"),
  "remoteRead.lookback": flag.duration("1h", "How far back state restore looks for ALERTS_FOR_STATE"),

  "notifier.url": flag.stringList([], "Alertmanager URL (API v2 is used: <url>/api/v2/alerts); repeated for several Alertmanagers"),
  "notifier.basicAuth.username": flag.stringList([], "Basic auth username per -notifier.url (in the same order; one value applies to all)"),
  "notifier.basicAuth.password": flag.stringList([], "Basic auth password per -notifier.url; file:///path reads it from a file. Never logged."),
  "notifier.bearerToken": flag.stringList([], "Bearer token per -notifier.url; file:///path reads it from a file. Never logged."),
  "notifier.basicAuth.passwordFile": flag.stringList([], "File with the basic auth password per -notifier.url (vmalert's name)"),
  "notifier.bearerTokenFile": flag.stringList([], "File with the bearer token per -notifier.url (vmalert's name)"),
  "notifier.tlsCAFile": flag.stringList([], "CA file per -notifier.url to verify its certificate"),
  "notifier.tlsCertFile": flag.stringList([], "Client certificate file per -notifier.url"),
  "notifier.tlsKeyFile": flag.stringList([], "Client key file per -notifier.url"),
  "notifier.tlsServerName": flag.stringList([], "Server name per -notifier.url to verify the certificate against"),
  "notifier.tlsInsecureSkipVerify": flag.bool(false, "Do not verify the certificates of -notifier.url"),
  "notifier.timeout": flag.duration("10s", "Timeout of one request to Alertmanager"),

  "external.url": flag.string("", "URL of this service as users reach it (alerts' generatorURL, the externalURL and pathPrefix template functions); default http://<hostname>:<port>"),
  "external.label": flag.stringList([], "Label name=value added to every alert and every series the rules write (repeated)"),

  "replay.timeFrom": flag.string("", "Replay: evaluate the rules from this time (RFC3339 or unix seconds) to -replay.timeTo over past data, write the results and exit"),
  "replay.timeTo": flag.string("", "Replay: the end of the time range (default: now)"),

  reloadAuthKey: flag.string("", "Key that /-/reload wants as the authKey query arg; overrides -httpAuth.* there; file:///path reads it from a file. Never logged."),
  ...flagsPageFlags,
  ...httpSecurityFlags,
  // The process flag with the alert's own default: its heap is small and allocates little, so
  // collecting at 1.5x the live size costs little CPU and keeps RSS down (docs/benchmarks.md).
  "memory.heapGrowthPercent": flag.int(50, "How far (percent) the JS heap may grow past its live size before the next full GC, like Go's GOGC (0: V8's own heuristics)."),
  loggerLevel: flag.string("INFO", "Minimum level of log lines: DEBUG, INFO, WARN, ERROR"),
});
