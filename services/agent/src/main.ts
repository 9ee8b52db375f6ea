#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { BadDataError, displayFlags, errorMessage, parseListenAddr, runService, type FlagValues } from "@strata/core";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { Relabeler, loadRelabelConfigFile } from "@strata/relabel";
import { PushReceiver, RemoteWriteFanout, ScrapeManager, loadScrapeConfig, type ScrapeFileConfig, type TlsConfig } from "@strata/scrape";
import { buildApp } from "./app.js";
import { agentFlags, perUrl } from "./flags.js";

await runService({
  name: "strata-agent",
  summary:
    "Strata agent: scrapes Prometheus targets (-promscrape.config), accepts pushed data (remote write, imports) and forwards everything to every -remoteWrite.url through durable per-URL queues.",
  flags: agentFlags,
  async start({ flags, log, metrics, onShutdown }) {
    const configPath = flags["promscrape.config"];
    const load = (): ScrapeFileConfig =>
      configPath === "" ? { scrapeIntervalMs: 60_000, scrapeTimeoutMs: 10_000, externalLabels: [], scrapeConfigs: [], remoteWrite: [] } : loadScrapeConfig(configPath);
    const relabelPath = flags["remoteWrite.relabelConfig"];
    const relabel = relabelPath === "" ? undefined : await loadRelabelConfigFile(relabelPath);
    const urls = flags["remoteWrite.url"];
    const urlRelabel = flags["remoteWrite.urlRelabelConfig"];
    if (urlRelabel.length > urls.length) throw new BadDataError(`-remoteWrite.urlRelabelConfig is given ${urlRelabel.length} times for ${urls.length} -remoteWrite.url`, "STRATA_INVALID_FLAG");
    const urlRelabelers: (Relabeler | undefined)[] = [];
    for (let i = 0; i < urls.length; i++) {
      const p = perUrl(urlRelabel, i);
      urlRelabelers.push(p === "" ? undefined : await loadRelabelConfigFile(p));
    }
    let cfg = load();
    if (flags.dryRun) {
      process.stdout.write(`${configPath === "" ? "no -promscrape.config" : configPath}: ok (${cfg.scrapeConfigs.length} scrape configs)\n`);
      process.exit(0);
    }
    // Without -remoteWrite.url, the remote_write section of the config (Prometheus agent mode's way).
    const targets =
      urls.length > 0
        ? urls.map((url, i) => ({ url, relabel: urlRelabelers[i], headers: remoteWriteHeaders(flags, i), tls: remoteWriteTls(flags, i) }))
        : cfg.remoteWrite.map((r) => ({ url: r.url, relabel: r.writeRelabel, headers: r.headers, tls: r.tls }));
    if (targets.length === 0) throw new BadDataError("set at least one -remoteWrite.url (or remote_write in -promscrape.config)", "STRATA_INVALID_FLAG");
    const version = flags["remoteWrite.version"];
    if (version !== 1 && version !== 2) throw new BadDataError(`-remoteWrite.version=${version}: want 1 or 2`, "STRATA_INVALID_FLAG");
    const members = flags["promscrape.cluster.membersCount"];
    const memberFlag = flags["promscrape.cluster.memberNum"];
    // "2" or a StatefulSet pod name "strata-agent-2", as vmagent takes it.
    const memberMatch = /(?:^|-)(\d+)$/.exec(memberFlag);
    const memberNum = memberMatch === null ? -1 : Number(memberMatch[1]);
    if (members < 1 || memberNum < 0 || memberNum >= members) {
      throw new BadDataError(`-promscrape.cluster.memberNum=${memberFlag} must be a number in [0, -promscrape.cluster.membersCount=${members}) or a name ending in -<number>`, "STRATA_INVALID_FLAG");
    }
    const memberLabel = flags["promscrape.cluster.memberLabel"];
    if (memberLabel !== "" && !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(memberLabel)) {
      throw new BadDataError(`-promscrape.cluster.memberLabel=${memberLabel} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)`, "STRATA_INVALID_FLAG");
    }

    const fanout = new RemoteWriteFanout({
      targets,
      tmpDataPath: flags["remoteWrite.tmpDataPath"],
      maxDiskUsagePerURL: flags["remoteWrite.maxDiskUsagePerURL"],
      version,
      relabel,
      log,
      metrics,
      sendTimeoutMs: flags["remoteWrite.sendTimeout"],
      retryMinMs: flags["remoteWrite.retryMinInterval"],
      retryMaxMs: flags["remoteWrite.retryMaxInterval"],
      maxBlockBytes: flags["remoteWrite.maxBlockSize"],
      fsyncIntervalMs: flags["remoteWrite.fsyncInterval"],
      flushIntervalMs: flags["remoteWrite.flushInterval"],
    });
    // Closed last: queued data is fsynced after the scrapers and receivers stopped adding to it.
    onShutdown({ name: "remote write queues", close: () => fanout.close() });
    const manager = new ScrapeManager({
      fanout,
      log,
      metrics,
      dnsServers: flags["promscrape.dnsServers"],
      maxScrapeBytes: flags["promscrape.maxScrapeSize"],
      membersCount: members,
      memberNum,
      replicationFactor: flags["promscrape.cluster.replicationFactor"],
      ...(memberLabel !== "" ? { memberLabel: { name: memberLabel, value: memberFlag } } : {}),
    });
    onShutdown({ name: "scrapers", close: () => manager.stop() });
    await manager.apply(cfg);
    const reloads = metrics.counter("strata_agent_config_reloads_total", "Config reloads attempted.");
    let lastOk = 1;
    metrics.gauge("strata_agent_config_last_reload_successful", "1 when the last reload of -promscrape.config succeeded.", () => lastOk);
    const reload = async (): Promise<void> => {
      reloads.inc();
      try {
        cfg = load();
      } catch (err) {
        lastOk = 0;
        log.error({ err: errorMessage(err) }, "cannot reload -promscrape.config; keeping the previous config");
        throw err;
      }
      await manager.apply(cfg);
      lastOk = 1;
      log.info({ jobs: cfg.scrapeConfigs.length }, "reloaded -promscrape.config");
    };
    const onHup = (): void => void reload().catch(() => undefined);
    process.on("SIGHUP", onHup);
    onShutdown({ name: "SIGHUP reload", close: () => void process.off("SIGHUP", onHup) });

    const push = new PushReceiver(fanout, {
      maxRequestBytes: flags.maxInsertRequestSize,
      maxLineBytes: flags["import.maxLineLen"],
      limits: { maxLabels: flags.maxLabelsPerTimeseries },
    });
    metrics.counter("strata_agent_push_rows_received_total", "Samples accepted by the push receivers.", () => push.rowsReceived);
    const security = httpSecurityFromFlags(flags, log, metrics);
    const reloadAuthKey = readSecret("reloadAuthKey", flags.reloadAuthKey);
    const flagsAuthKey = readSecret("flagsAuthKey", flags.flagsAuthKey);
    const app = buildApp({ manager, push, metrics, log, maxRequestBytes: flags.maxInsertRequestSize, reload, security, reloadAuthKey, flags: displayFlags(agentFlags, flags), flagsAuthKey });
    const { host, port } = parseListenAddr(flags.httpListenAddr);
    await app.listen({ host: host ?? "0.0.0.0", port });
    onShutdown({ name: "HTTP server", close: () => app.close() });
    log.info({ httpPort: port, urls: targets.length, jobs: cfg.scrapeConfigs.length }, "listening");
  },
});

type AgentFlags = FlagValues<typeof agentFlags>;

function remoteWriteHeaders(flags: AgentFlags, i: number): Record<string, string> {
  const user = perUrl(flags["remoteWrite.basicAuth.username"], i);
  const token = readSecret("remoteWrite.bearerToken", perUrl(flags["remoteWrite.bearerToken"], i));
  if (user !== "" && token !== "") throw new BadDataError(`-remoteWrite.url #${i + 1}: set -remoteWrite.basicAuth.* or -remoteWrite.bearerToken, not both`, "STRATA_INVALID_FLAG");
  if (user !== "") {
    const password = readSecret("remoteWrite.basicAuth.password", perUrl(flags["remoteWrite.basicAuth.password"], i));
    return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
  }
  return token !== "" ? { authorization: `Bearer ${token}` } : {};
}

function remoteWriteTls(flags: AgentFlags, i: number): TlsConfig {
  const file = (name: "remoteWrite.tlsCAFile" | "remoteWrite.tlsCertFile" | "remoteWrite.tlsKeyFile"): string | undefined => {
    const p = perUrl(flags[name], i);
    if (p === "") return undefined;
    try {
      return readFileSync(p, "utf8");
    } catch (err) {
      throw new BadDataError(`-${name}=${p}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
    }
  };
  const ca = file("remoteWrite.tlsCAFile");
  const cert = file("remoteWrite.tlsCertFile");
  const key = file("remoteWrite.tlsKeyFile");
  if ((cert === undefined) !== (key === undefined)) throw new BadDataError(`-remoteWrite.url #${i + 1}: -remoteWrite.tlsCertFile and -remoteWrite.tlsKeyFile go together`, "STRATA_INVALID_FLAG");
  const serverName = perUrl(flags["remoteWrite.tlsServerName"], i);
  const skip = perUrl(flags["remoteWrite.tlsInsecureSkipVerify"], i);
  if (skip !== "" && skip !== "true" && skip !== "false") throw new BadDataError(`-remoteWrite.tlsInsecureSkipVerify=${skip}: want true or false`, "STRATA_INVALID_FLAG");
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(serverName !== "" ? { serverName } : {}),
    insecureSkipVerify: skip === "true",
  };
}
