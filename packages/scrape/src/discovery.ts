import { watch, type FSWatcher } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { promises as dns } from "node:dns";
type Resolver = InstanceType<typeof dns.Resolver>;
import { basename, dirname, join } from "node:path";
import type { Label, Logger } from "@strata/core";
import { parse as parseYaml } from "yaml";
import type { DnsSdConfig, FileSdConfig, HttpSdConfig, ScrapeConfig, TargetGroup } from "./config.js";

/**
 * Service discovery: each provider calls `update(source, groups)` whenever what it found
 * changes. file_sd watches its files (and re-reads them every refresh_interval), http_sd and
 * dns_sd poll. A provider that fails keeps its last groups and logs why.
 */

export type GroupsUpdate = (source: string, groups: readonly TargetGroup[]) => void;

export interface Discoverer {
  stop(): void;
}

export interface DiscoveryOptions {
  /** DNS servers (`ip` or `ip:port`) for dns_sd_configs instead of the system resolver. */
  readonly dnsServers?: readonly string[];
}

/** Starts every provider of a job (static groups are reported at once). */
export function startDiscovery(job: ScrapeConfig, update: GroupsUpdate, log: Logger, opts: DiscoveryOptions = {}): Discoverer[] {
  let resolver: Resolver | undefined;
  if (opts.dnsServers !== undefined && opts.dnsServers.length > 0 && job.dnsSd.length > 0) {
    resolver = new dns.Resolver({ timeout: 5000, tries: 2 });
    resolver.setServers([...opts.dnsServers]);
  }
  const out: Discoverer[] = [];
  update("static", job.staticConfigs);
  job.fileSd.forEach((c, i) => out.push(new FileSd(c, (g) => update(`file_sd_configs[${i}]`, g), log)));
  job.httpSd.forEach((c, i) => out.push(new Poller(c.refreshIntervalMs, () => httpSd(c), (g) => update(`http_sd_configs[${i}]`, g), log, `http_sd ${c.url}`)));
  job.dnsSd.forEach((c, i) => out.push(new Poller(c.refreshIntervalMs, () => dnsSd(c, resolver), (g) => update(`dns_sd_configs[${i}]`, g), log, `dns_sd ${c.names.join(",")}`)));
  return out;
}

/** Parses a file_sd / http_sd document: a list of `{targets: [...], labels: {...}}`. */
export function parseTargetGroups(doc: unknown, where: string, extra: readonly Label[]): TargetGroup[] {
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw new Error(`${where}: want a list of {targets, labels} groups`);
  return doc.map((g, i) => {
    if (typeof g !== "object" || g === null || Array.isArray(g)) throw new Error(`${where}: [${i}]: want a mapping with targets and labels`);
    const o = g as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== "targets" && k !== "labels") throw new Error(`${where}: [${i}].${k}: unknown field`);
    const t = o["targets"] ?? [];
    if (!Array.isArray(t) || !t.every((x) => typeof x === "string")) throw new Error(`${where}: [${i}].targets: want a list of host:port strings`);
    const labels: Label[] = [...extra];
    const l = o["labels"] ?? {};
    if (typeof l !== "object" || l === null || Array.isArray(l)) throw new Error(`${where}: [${i}].labels: want a mapping`);
    for (const [k, v] of Object.entries(l as Record<string, unknown>)) {
      if (typeof v !== "string") throw new Error(`${where}: [${i}].labels.${k}: want a string`);
      labels.push({ name: k, value: v });
    }
    return { targets: t as string[], labels, source: where };
  });
}

class FileSd implements Discoverer {
  private readonly watchers: FSWatcher[] = [];
  private readonly timer: NodeJS.Timeout;
  private pending: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly c: FileSdConfig,
    private readonly update: (g: readonly TargetGroup[]) => void,
    private readonly log: Logger,
  ) {
    for (const dir of new Set(c.files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, () => this.soon());
        w.on("error", () => undefined);
        this.watchers.push(w);
      } catch (err) {
        log.warn({ dir, err: err instanceof Error ? err.message : String(err) }, "file_sd: cannot watch directory; relying on refresh_interval");
      }
    }
    this.timer = setInterval(() => void this.refresh(), c.refreshIntervalMs);
    this.timer.unref();
    void this.refresh();
  }

  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.refresh();
    }, 100);
  }

  private async refresh(): Promise<void> {
    const groups: TargetGroup[] = [];
    for (const pattern of this.c.files) {
      for (const file of await expand(pattern)) {
        try {
          const text = await readFile(file, "utf8");
          const doc: unknown = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
          groups.push(...parseTargetGroups(doc, file, [{ name: "__meta_filepath", value: file }]));
        } catch (err) {
          this.log.error({ file, err: err instanceof Error ? err.message : String(err) }, "file_sd: cannot read targets; keeping the last ones");
          return;
        }
      }
    }
    if (!this.stopped) this.update(groups);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const w of this.watchers) w.close();
  }
}

/** The files a file_sd pattern names (`*` and `?` in the last path element, as Prometheus). */
async function expand(pattern: string): Promise<string[]> {
  const name = basename(pattern);
  if (!/[*?[]/.test(name)) return [pattern];
  const re = new RegExp(`^${name.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  try {
    return (await readdir(dirname(pattern))).filter((f) => re.test(f)).sort().map((f) => join(dirname(pattern), f));
  } catch {
    return [];
  }
}

class Poller implements Discoverer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly everyMs: number,
    private readonly fetchGroups: () => Promise<TargetGroup[]>,
    private readonly update: (g: readonly TargetGroup[]) => void,
    private readonly log: Logger,
    private readonly what: string,
  ) {
    void this.tick();
  }

  private async tick(): Promise<void> {
    try {
      const g = await this.fetchGroups();
      if (!this.stopped) this.update(g);
    } catch (err) {
      this.log.error({ sd: this.what, err: err instanceof Error ? err.message : String(err) }, "service discovery failed; keeping the last targets");
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.everyMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

async function httpSd(c: HttpSdConfig): Promise<TargetGroup[]> {
  const r = await fetch(c.url, { headers: { accept: "application/json", "x-prometheus-refresh-interval-seconds": String(c.refreshIntervalMs / 1000) }, signal: AbortSignal.timeout(30_000) });
  if (r.status !== 200) throw new Error(`${c.url}: HTTP ${r.status}`);
  return parseTargetGroups(await r.json(), c.url, [{ name: "__meta_url", value: c.url }]);
}

/**
 * dns_sd_configs as Prometheus maps records to targets: SRV → `<target>:<port>` per record (the
 * record's target name, trailing dot removed, not resolved), A/AAAA → `<address>:<port>`.
 */
export async function dnsSd(c: DnsSdConfig, resolver?: Resolver): Promise<TargetGroup[]> {
  const out: TargetGroup[] = [];
  for (const name of c.names) {
    const meta: Label = { name: "__meta_dns_name", value: name };
    if (c.type === "SRV") {
      for (const r of await (resolver ?? dns).resolveSrv(name)) {
        const target = r.name.replace(/\.$/, "");
        out.push({
          targets: [`${target}:${r.port}`],
          labels: [meta, { name: "__meta_dns_srv_record_target", value: target }, { name: "__meta_dns_srv_record_port", value: String(r.port) }],
          source: `dns_sd ${name}`,
        });
      }
    } else if (resolver !== undefined) {
      const addrs = c.type === "A" ? await resolver.resolve4(name) : await resolver.resolve6(name);
      out.push({ targets: addrs.map((a) => (c.type === "A" ? `${a}:${c.port}` : `[${a}]:${c.port}`)), labels: [meta], source: `dns_sd ${name}` });
    } else {
      const family = c.type === "A" ? 4 : 6;
      // The system resolver (getaddrinfo): /etc/hosts and the configured DNS servers, as Go's resolver.
      const addrs = await dns.lookup(name, { all: true, family });
      const hostPort = (a: string): string => (family === 6 ? `[${a}]:${c.port}` : `${a}:${c.port}`);
      out.push({ targets: addrs.map((a) => hostPort(a.address)), labels: [meta], source: `dns_sd ${name}` });
    }
  }
  return out;
}
