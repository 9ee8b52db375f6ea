import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { BadDataError, isLegacyLabelName, type Label } from "@strata/core";
import { Relabeler, normalizeRelabelConfig } from "@strata/relabel";
import { YamlNode } from "./yaml-walk.js";

/**
 * Prometheus' `scrape_configs` format (the `-promscrape.config` file). Every key of the file is
 * checked: an unknown key or an invalid value is a BadDataError naming the file, line and key.
 * Sections of prometheus.yml that do not concern scraping (alerting, rule_files, remote_write,
 * …) are accepted and ignored so that one prometheus.yml serves Prometheus, vmagent and the agent.
 */

export interface TargetGroup {
  readonly targets: readonly string[];
  readonly labels: readonly Label[];
  /** Where the group came from (`static_configs[0]`, a file path, an http_sd URL). */
  readonly source: string;
}

export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

export interface TlsConfig {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify: boolean;
}

export interface FileSdConfig {
  readonly files: readonly string[];
  readonly refreshIntervalMs: number;
}

export interface HttpSdConfig {
  readonly url: string;
  readonly refreshIntervalMs: number;
}

export interface DnsSdConfig {
  readonly names: readonly string[];
  readonly type: "A" | "AAAA" | "SRV";
  readonly port: number;
  readonly refreshIntervalMs: number;
}

export interface ScrapeConfig {
  readonly jobName: string;
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
  readonly metricsPath: string;
  readonly scheme: "http" | "https";
  readonly params: ReadonlyMap<string, readonly string[]>;
  readonly honorLabels: boolean;
  readonly honorTimestamps: boolean;
  readonly basicAuth?: BasicAuth;
  /** `Authorization` header value (`Bearer <token>`), from authorization or bearer_token(_file). */
  readonly authorization?: string;
  readonly tls: TlsConfig;
  readonly proxyUrl?: string;
  /** 0: no limit. */
  readonly sampleLimit: number;
  readonly labelLimit: number;
  readonly relabel: Relabeler;
  /** null when the job has no metric_relabel_configs. */
  readonly metricRelabel: Relabeler | null;
  readonly staticConfigs: readonly TargetGroup[];
  readonly fileSd: readonly FileSdConfig[];
  readonly httpSd: readonly HttpSdConfig[];
  readonly dnsSd: readonly DnsSdConfig[];
  /** The job's own config text, to tell on reload whether its targets must restart. */
  readonly fingerprint: string;
}

/** A `remote_write` entry of prometheus.yml (used when no -remoteWrite.url is given). */
export interface RemoteWriteConfig {
  readonly url: string;
  readonly writeRelabel: Relabeler | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: TlsConfig;
}

export interface ScrapeFileConfig {
  readonly scrapeIntervalMs: number;
  readonly scrapeTimeoutMs: number;
  readonly externalLabels: readonly Label[];
  readonly scrapeConfigs: readonly ScrapeConfig[];
  readonly remoteWrite: readonly RemoteWriteConfig[];
}

const TOP_KEYS = new Set(["global", "scrape_configs", "scrape_config_files", "alerting", "rule_files", "remote_write", "remote_read", "storage", "tracing", "runtime", "otlp"]);
const GLOBAL_KEYS = new Set([
  "scrape_interval",
  "scrape_timeout",
  "evaluation_interval",
  "external_labels",
  "query_log_file",
  "scrape_failure_log_file",
  "rule_query_offset",
  "scrape_protocols",
  "body_size_limit",
  "sample_limit",
  "label_limit",
  "label_name_length_limit",
  "label_value_length_limit",
  "target_limit",
  "keep_dropped_targets",
  "metric_name_validation_scheme",
  "metric_name_escaping_scheme",
  "convert_classic_histograms_to_nhcb",
  "always_scrape_classic_histograms",
]);
/** Prometheus' HTTP client settings (common/config.HTTPClientConfig), as written in YAML. */
const HTTP_CLIENT_KEYS = ["basic_auth", "authorization", "bearer_token", "bearer_token_file", "tls_config", "proxy_url", "follow_redirects", "enable_http2"];
const SCRAPE_KEYS = new Set([
  ...HTTP_CLIENT_KEYS,
  "job_name",
  "scrape_interval",
  "scrape_timeout",
  "metrics_path",
  "scheme",
  "params",
  "honor_labels",
  "honor_timestamps",
  "track_timestamps_staleness",
  "enable_compression",
  "sample_limit",
  "label_limit",
  "label_name_length_limit",
  "label_value_length_limit",
  "target_limit",
  "body_size_limit",
  "scrape_protocols",
  "fallback_scrape_protocol",
  "scrape_classic_histograms",
  "always_scrape_classic_histograms",
  "keep_dropped_targets",
  "metric_name_validation_scheme",
  "metric_name_escaping_scheme",
  "relabel_configs",
  "metric_relabel_configs",
  "static_configs",
  "file_sd_configs",
  "http_sd_configs",
  "dns_sd_configs",
]);
const BASIC_AUTH_KEYS = new Set(["username", "password", "password_file", "username_file"]);
const AUTHZ_KEYS = new Set(["type", "credentials", "credentials_file"]);
const TLS_KEYS = new Set(["ca_file", "cert_file", "key_file", "ca", "cert", "key", "server_name", "insecure_skip_verify", "min_version", "max_version"]);
const STATIC_KEYS = new Set(["targets", "labels"]);
const FILE_SD_KEYS = new Set(["files", "refresh_interval"]);
const HTTP_SD_KEYS = new Set(["url", "refresh_interval", ...HTTP_CLIENT_KEYS]);
const DNS_SD_KEYS = new Set(["names", "type", "port", "refresh_interval"]);
const REMOTE_WRITE_KEYS = new Set([
  ...HTTP_CLIENT_KEYS,
  "url",
  "name",
  "remote_timeout",
  "headers",
  "write_relabel_configs",
  "queue_config",
  "metadata_config",
  "send_exemplars",
  "send_native_histograms",
  "protobuf_message",
  "round_robin_dns",
]);

const DEFAULT_SCRAPE_INTERVAL = 60_000;
const DEFAULT_SCRAPE_TIMEOUT = 10_000;

/** Reads and checks a scrape config file. */
export function loadScrapeConfig(path: string): ScrapeFileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BadDataError(`cannot read -promscrape.config ${JSON.stringify(path)}: ${err instanceof Error ? err.message : String(err)}`, "STRATA_PARSE_ERROR");
  }
  return parseScrapeConfig(text, path);
}

/** Parses scrape config text; `file` names it in errors and is the base of relative paths. */
export function parseScrapeConfig(text: string, file: string): ScrapeFileConfig {
  const base = dirname(resolve(file));
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const readSecret = (n: YamlNode): string => {
    const p = rel(n.string());
    try {
      return readFileSync(p, "utf8").trim();
    } catch (err) {
      throw n.error(`cannot read ${JSON.stringify(p)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const root = YamlNode.parse(file, text).map(TOP_KEYS);
  const g = root.get("global")?.map(GLOBAL_KEYS) ?? new Map<string, YamlNode>();
  const scrapeIntervalMs = g.get("scrape_interval")?.duration() ?? DEFAULT_SCRAPE_INTERVAL;
  const scrapeTimeoutMs = g.get("scrape_timeout")?.duration() ?? Math.min(DEFAULT_SCRAPE_TIMEOUT, scrapeIntervalMs);
  if (scrapeTimeoutMs > scrapeIntervalMs) throw (g.get("scrape_timeout") ?? g.get("scrape_interval"))!.error("global scrape_timeout is greater than scrape_interval");
  const externalLabels = labelsOf(g.get("external_labels"));
  const files = root.get("scrape_config_files");
  if (files !== undefined && !files.isNull) throw files.error("scrape_config_files is not supported: put the jobs into scrape_configs");

  const jobs: ScrapeConfig[] = [];
  const seen = new Map<string, number>();
  for (const sc of root.get("scrape_configs")?.seq() ?? []) {
    const m = sc.map(SCRAPE_KEYS);
    const jn = m.get("job_name");
    if (jn === undefined) throw sc.error("job_name is missing");
    const jobName = jn.string();
    if (jobName === "") throw jn.error("job_name must not be empty");
    const prev = seen.get(jobName);
    if (prev !== undefined) throw jn.error(`job_name ${JSON.stringify(jobName)} is already used by scrape_configs[${prev}]`);
    seen.set(jobName, jobs.length);
    const interval = m.get("scrape_interval")?.duration() ?? scrapeIntervalMs;
    const timeoutNode = m.get("scrape_timeout");
    const timeout = timeoutNode?.duration() ?? Math.min(scrapeTimeoutMs, interval);
    if (timeout > interval) throw (timeoutNode ?? m.get("scrape_interval") ?? sc).error(`scrape_timeout (${timeout} ms) is greater than scrape_interval (${interval} ms)`);
    const metricsPath = m.get("metrics_path")?.string() ?? "/metrics";
    if (!metricsPath.startsWith("/")) throw m.get("metrics_path")!.error(`metrics_path ${JSON.stringify(metricsPath)} must start with /`);
    const schemeNode = m.get("scheme");
    const scheme = schemeNode?.string() ?? "http";
    if (scheme !== "http" && scheme !== "https") throw schemeNode!.error(`scheme ${JSON.stringify(scheme)}: want http or https`);
    const params = new Map<string, string[]>();
    for (const [k, v] of m.get("params")?.anyMap() ?? []) params.set(k, v.stringList());

    let basicAuth: BasicAuth | undefined;
    const ba = m.get("basic_auth");
    if (ba !== undefined && !ba.isNull) {
      const b = ba.map(BASIC_AUTH_KEYS);
      const pw = b.get("password");
      const pwf = b.get("password_file");
      if (pw !== undefined && pwf !== undefined) throw pwf.error("at most one of basic_auth password and password_file may be set");
      const uf = b.get("username_file");
      basicAuth = {
        username: uf !== undefined ? readSecret(uf) : (b.get("username")?.string() ?? ""),
        password: pwf !== undefined ? readSecret(pwf) : (pw?.string() ?? ""),
      };
    }
    let authorization: string | undefined;
    const az = m.get("authorization");
    const bt = m.get("bearer_token");
    const btf = m.get("bearer_token_file");
    const authCount = [az, bt, btf, basicAuth].filter((x) => x !== undefined).length;
    if (authCount > 1) throw (btf ?? bt ?? az ?? sc).error("at most one of basic_auth, authorization, bearer_token and bearer_token_file may be set");
    if (az !== undefined && !az.isNull) {
      const a = az.map(AUTHZ_KEYS);
      const type = a.get("type")?.string() ?? "Bearer";
      if (type.toLowerCase() === "basic") throw a.get("type")!.error("authorization type Basic is not allowed: use basic_auth");
      const cf = a.get("credentials_file");
      const cred = cf !== undefined ? readSecret(cf) : (a.get("credentials")?.string() ?? "");
      authorization = `${type} ${cred}`;
    } else if (bt !== undefined) authorization = `Bearer ${bt.string()}`;
    else if (btf !== undefined) authorization = `Bearer ${readSecret(btf)}`;

    const tls = tlsOf(m.get("tls_config"), rel);
    const proxyNode = m.get("proxy_url");
    const proxyUrl = proxyNode?.string();
    if (proxyUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(proxyUrl);
      } catch {
        throw proxyNode!.error(`invalid proxy_url ${JSON.stringify(proxyUrl)}`);
      }
      if (u.protocol !== "http:") throw proxyNode!.error(`proxy_url ${JSON.stringify(proxyUrl)}: only http:// proxies are supported`);
    }
    const relabel = relabelerOf(m.get("relabel_configs"));
    const mr = m.get("metric_relabel_configs");
    const metricRelabel = mr === undefined || mr.isNull ? null : relabelerOf(mr);

    const staticConfigs = (m.get("static_configs")?.seq() ?? []).map((n, i) => {
      const s = n.map(STATIC_KEYS);
      const targets = s.get("targets")?.stringList() ?? [];
      targets.forEach((t, k) => {
        if (t === "" || /[/\s]/.test(t)) throw s.get("targets")!.seq()[k]!.error(`invalid target address ${JSON.stringify(t)}: want host:port`);
      });
      return { targets, labels: labelsOf(s.get("labels")), source: `${jobName}/static_configs[${i}]` };
    });
    const fileSd = (m.get("file_sd_configs")?.seq() ?? []).map((n) => {
      const f = n.map(FILE_SD_KEYS);
      const fl = f.get("files");
      if (fl === undefined) throw n.error("files is missing");
      return { files: fl.stringList().map(rel), refreshIntervalMs: f.get("refresh_interval")?.duration() ?? 5 * 60_000 };
    });
    const httpSd = (m.get("http_sd_configs")?.seq() ?? []).map((n) => {
      const h = n.map(HTTP_SD_KEYS);
      return { url: urlOf(n, h), refreshIntervalMs: h.get("refresh_interval")?.duration() ?? 60_000 };
    });
    const dnsSd = (m.get("dns_sd_configs")?.seq() ?? []).map((n) => {
      const d = n.map(DNS_SD_KEYS);
      const nn = d.get("names");
      if (nn === undefined) throw n.error("names is missing");
      const tn = d.get("type");
      const type = (tn?.string() ?? "SRV").toUpperCase();
      if (type !== "A" && type !== "AAAA" && type !== "SRV") throw tn!.error(`type ${JSON.stringify(type)}: want SRV, A or AAAA`);
      const pn = d.get("port");
      const port = pn?.int(1) ?? 0;
      if (type !== "SRV" && port === 0) throw n.error(`port is required for type ${type}`);
      return { names: nn.stringList(), type: type as DnsSdConfig["type"], port, refreshIntervalMs: d.get("refresh_interval")?.duration() ?? 30_000 };
    });
    jobs.push({
      jobName,
      scrapeIntervalMs: interval,
      scrapeTimeoutMs: timeout,
      metricsPath,
      scheme,
      params,
      honorLabels: m.get("honor_labels")?.bool() ?? false,
      honorTimestamps: m.get("honor_timestamps")?.bool() ?? true,
      ...(basicAuth !== undefined ? { basicAuth } : {}),
      ...(authorization !== undefined ? { authorization } : {}),
      tls,
      ...(proxyUrl !== undefined ? { proxyUrl } : {}),
      sampleLimit: m.get("sample_limit")?.int() ?? 0,
      labelLimit: m.get("label_limit")?.int() ?? 0,
      relabel,
      metricRelabel,
      staticConfigs,
      fileSd,
      httpSd,
      dnsSd,
      fingerprint: JSON.stringify([sc.toJS(), interval, timeout, externalLabels]),
    });
  }
  const remoteWrite = (root.get("remote_write")?.seq() ?? []).map((n) => {
    const r = n.map(REMOTE_WRITE_KEYS);
    const url = urlOf(n, r);
    const headers: Record<string, string> = {};
    for (const [k, v] of r.get("headers")?.anyMap() ?? []) headers[k.toLowerCase()] = v.string();
    const ba = r.get("basic_auth");
    if (ba !== undefined && !ba.isNull) {
      const b = ba.map(BASIC_AUTH_KEYS);
      const pwf = b.get("password_file");
      const user = b.get("username")?.string() ?? "";
      const pw = pwf !== undefined ? readSecret(pwf) : (b.get("password")?.string() ?? "");
      headers["authorization"] = `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;
    }
    const bt = r.get("bearer_token");
    const btf = r.get("bearer_token_file");
    if (bt !== undefined) headers["authorization"] = `Bearer ${bt.string()}`;
    else if (btf !== undefined) headers["authorization"] = `Bearer ${readSecret(btf)}`;
    const wr = r.get("write_relabel_configs");
    return { url, writeRelabel: wr === undefined || wr.isNull ? undefined : relabelerOf(wr), headers, tls: tlsOf(r.get("tls_config"), rel) };
  });
  return { scrapeIntervalMs, scrapeTimeoutMs, externalLabels, scrapeConfigs: jobs, remoteWrite };
}

/** The required http(s) `url` of a mapping. */
function urlOf(n: YamlNode, m: ReadonlyMap<string, YamlNode>): string {
  const un = m.get("url");
  if (un === undefined) throw n.error("url is missing");
  const url = un.string();
  if (!/^https?:\/\//.test(url)) throw un.error(`url ${JSON.stringify(url)}: want http:// or https://`);
  return url;
}

function labelsOf(n: YamlNode | undefined): Label[] {
  const out: Label[] = [];
  for (const [k, v] of n?.anyMap() ?? []) {
    if (!isLegacyLabelName(k) && !/^[^\s]+$/u.test(k)) throw v.error(`invalid label name ${JSON.stringify(k)}`);
    out.push({ name: k, value: v.isNull ? "" : v.string() });
  }
  return out;
}

function tlsOf(n: YamlNode | undefined, rel: (p: string) => string): TlsConfig {
  if (n === undefined || n.isNull) return { insecureSkipVerify: false };
  const t = n.map(TLS_KEYS);
  const file = (key: string, inline: string): string | undefined => {
    const f = t.get(key);
    const i = t.get(inline);
    if (f !== undefined && i !== undefined) throw i.error(`at most one of ${key} and ${inline} may be set`);
    if (i !== undefined) return i.string();
    if (f === undefined) return undefined;
    const p = rel(f.string());
    try {
      return readFileSync(p, "utf8");
    } catch (err) {
      throw f.error(`cannot read ${JSON.stringify(p)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const ca = file("ca_file", "ca");
  const cert = file("cert_file", "cert");
  const key = file("key_file", "key");
  if ((cert === undefined) !== (key === undefined)) throw n.error("cert_file and key_file must be set together");
  const serverName = t.get("server_name")?.string();
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
    insecureSkipVerify: t.get("insecure_skip_verify")?.bool() ?? false,
  };
}

function relabelerOf(n: YamlNode | undefined): Relabeler {
  if (n === undefined) return new Relabeler([]);
  const rules = n.seq().map((r, i) => {
    try {
      return normalizeRelabelConfig(r.toJS(), i);
    } catch (err) {
      throw r.error(err instanceof Error ? err.message.replace(/^relabel_configs\[\d+\]: /, "") : String(err));
    }
  });
  try {
    return new Relabeler(rules);
  } catch (err) {
    throw n.error(err instanceof Error ? err.message : String(err));
  }
}
