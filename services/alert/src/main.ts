#!/usr/bin/env node
import { hostname } from "node:os";
import { resolve } from "node:path";
import { BadDataError, displayFlags, parseListenAddr, parseTimestamp, runService, type FlagValues, type Logger } from "@strata/core";
import {
  AlertingRule,
  AlertmanagerNotifier,
  HttpDatasource,
  loadRules,
  RemoteWriteQueue,
  replay,
  RuleManager,
  runRuleTestFile,
  type ClientOptions,
  type GroupConfig,
  type GroupOptions,
} from "@strata/rules";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { buildApp } from "./app.js";
import { alertFlags } from "./flags.js";

type Flags = FlagValues<typeof alertFlags>;

function parseExternalLabels(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf("=");
    if (eq <= 0) throw new BadDataError(`-external.label=${JSON.stringify(it)}: want name=value`, "STRATA_INVALID_FLAG");
    out[it.slice(0, eq)] = it.slice(eq + 1);
  }
  return out;
}

/** A secret from its flag (literal or file://) or from vmalert's `…File` flag naming a file. */
function secret(name: string, value: string, fileFlag: string, file: string): string {
  if (file === "") return readSecret(name, value);
  if (value !== "") throw new BadDataError(`-${name} and -${fileFlag} are both set: give one`, "STRATA_INVALID_FLAG");
  return readSecret(fileFlag, `file://${resolve(file)}`);
}

function clientOptions(f: Flags, prefix: "datasource" | "remoteWrite" | "remoteRead"): ClientOptions {
  const user = f[`${prefix}.basicAuth.username`];
  const pw = secret(`${prefix}.basicAuth.password`, f[`${prefix}.basicAuth.password`], `${prefix}.basicAuth.passwordFile`, f[`${prefix}.basicAuth.passwordFile`]);
  return {
    auth: {
      ...(user !== "" ? { basicAuth: { username: user, password: pw } } : {}),
      bearerToken: secret(`${prefix}.bearerToken`, f[`${prefix}.bearerToken`], `${prefix}.bearerTokenFile`, f[`${prefix}.bearerTokenFile`]),
    },
    tls: {
      caFile: f[`${prefix}.tlsCAFile`],
      certFile: f[`${prefix}.tlsCertFile`],
      keyFile: f[`${prefix}.tlsKeyFile`],
      serverName: f[`${prefix}.tlsServerName`],
      insecureSkipVerify: f[`${prefix}.tlsInsecureSkipVerify`],
    },
    ...(prefix === "datasource" ? { timeoutMs: f["datasource.queryTimeout"] } : {}),
  };
}

/** The i-th value of a per-notifier list flag (one value applies to every notifier). */
const nth = (l: readonly string[], i: number): string => (l.length === 1 ? l[0]! : (l[i] ?? ""));

function notifierTargets(f: Flags): { url: string; options: ClientOptions }[] {
  return f["notifier.url"].map((url, i) => {
    const user = nth(f["notifier.basicAuth.username"], i);
    return {
      url,
      options: {
        auth: {
          ...(user !== "" ? { basicAuth: { username: user, password: secret("notifier.basicAuth.password", nth(f["notifier.basicAuth.password"], i), "notifier.basicAuth.passwordFile", nth(f["notifier.basicAuth.passwordFile"], i)) } } : {}),
          bearerToken: secret("notifier.bearerToken", nth(f["notifier.bearerToken"], i), "notifier.bearerTokenFile", nth(f["notifier.bearerTokenFile"], i)),
        },
        tls: {
          caFile: nth(f["notifier.tlsCAFile"], i),
          certFile: nth(f["notifier.tlsCertFile"], i),
          keyFile: nth(f["notifier.tlsKeyFile"], i),
          serverName: nth(f["notifier.tlsServerName"], i),
          insecureSkipVerify: f["notifier.tlsInsecureSkipVerify"],
        },
        timeoutMs: f["notifier.timeout"],
      },
    };
  });
}

function remoteWriteUrl(url: string): string {
  return /\/(api\/v1\/)?write\/?$/.test(new URL(url).pathname) ? url : `${url.replace(/\/$/, "")}/api/v1/write`;
}

function countRules(groups: readonly GroupConfig[]): number {
  return groups.reduce((n, g) => n + g.rules.length, 0);
}

function exitAfter(log: Logger, code: number): never {
  log.flush();
  process.exit(code);
}

await runService({
  name: "strata-alert",
  summary: "evaluates Prometheus recording and alerting rules against a datasource, writes the results and notifies Alertmanager",
  flags: alertFlags,
  async start({ flags, log, metrics, onShutdown }) {
    if (flags.test.length > 0) {
      let ok = true;
      for (const f of flags.test) {
        const r = await runRuleTestFile(f);
        process.stdout.write(`${r.output}\n`);
        ok &&= r.ok;
      }
      exitAfter(log, ok ? 0 : 1);
    }
    if (flags.rule.length === 0) throw new BadDataError("no rule files: set -rule=/path/to/rules/*.yml", "STRATA_INVALID_FLAG");
    const load = (): GroupConfig[] => loadRules(flags.rule);
    if (flags.dryRun) {
      try {
        const groups = load();
        process.stdout.write(`rules are valid: ${groups.length} groups, ${countRules(groups)} rules\n`);
        exitAfter(log, 0);
      } catch (err) {
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        exitAfter(log, 1);
      }
    }
    let configs = load();
    // Before any group starts: a bad -tls* flag or secret file stops the start.
    const security = httpSecurityFromFlags(flags, log, metrics);
    if (flags["datasource.url"] === "") throw new BadDataError("-datasource.url is required", "STRATA_INVALID_FLAG");
    const externalLabels = parseExternalLabels(flags["external.label"]);
    const { port } = parseListenAddr(flags.httpListenAddr);
    const externalURL = flags["external.url"] !== "" ? flags["external.url"] : `http://${hostname()}:${port}`;
    const datasource = new HttpDatasource(flags["datasource.url"], clientOptions(flags, "datasource"));
    metrics.counter("strata_alert_datasource_requests_total", "Queries sent to -datasource.url.", () => datasource.requests);
    metrics.counter("strata_alert_datasource_errors_total", "Queries to -datasource.url that failed.", () => datasource.errors);

    const rw =
      flags["remoteWrite.url"] === ""
        ? undefined
        : new RemoteWriteQueue({
            url: remoteWriteUrl(flags["remoteWrite.url"]),
            client: clientOptions(flags, "remoteWrite"),
            maxQueueSize: flags["remoteWrite.maxQueueSize"],
            maxBatchSize: flags["remoteWrite.maxBatchSize"],
            flushIntervalMs: flags["remoteWrite.flushInterval"],
            retryMinIntervalMs: flags["remoteWrite.retryMinInterval"],
            retryMaxIntervalMs: flags["remoteWrite.retryMaxInterval"],
            externalLabels,
            log,
          });
    if (rw !== undefined) {
      onShutdown({ name: "remote write", close: () => rw.close() });
      metrics.counter("strata_alert_remotewrite_samples_total", "Samples written to -remoteWrite.url.", () => rw.sentSamples);
      metrics.counter("strata_alert_remotewrite_requests_total", "Remote write requests answered.", () => rw.sentRequests);
      metrics.counter("strata_alert_remotewrite_errors_total", "Remote write attempts that failed and were retried.", () => rw.failedRequests);
      metrics.counter("strata_alert_remotewrite_dropped_samples_total", "Samples dropped: queue full, rejected with 4xx, or left at shutdown (each logged).", () => rw.droppedSamples);
      metrics.gauge("strata_alert_remotewrite_queue_samples", "Samples waiting to be written.", () => rw.queued);
    }
    const sink = rw ?? {
      write: () => {
        /* no -remoteWrite.url: results stay in the rules' state only (like vmalert without it) */
      },
    };
    const onEvent: GroupOptions["onEvent"] = (e) => {
      if (e.error !== undefined) log.warn({ group: e.group, rule: e.rule, err: e.error }, "rule evaluation failed");
      if (e.restored !== undefined) log.info({ group: e.group, rule: e.rule, alerts: e.restored }, "restored alert state from ALERTS_FOR_STATE");
    };

    if (flags["replay.timeFrom"] !== "") {
      if (rw === undefined) throw new BadDataError("replay needs -remoteWrite.url to write its results", "STRATA_INVALID_FLAG");
      const from = parseTimestamp(flags["replay.timeFrom"]);
      const to = flags["replay.timeTo"] === "" ? Date.now() : parseTimestamp(flags["replay.timeTo"]);
      const res = await replay(
        configs,
        { datasource, sink: rw, defaultIntervalMs: flags.evaluationInterval, defaultQueryOffsetMs: flags["rule.queryOffset"], externalLabels, externalURL, resendDelayMs: 0, onEvent },
        from,
        to,
        (p) => log.info(p, "replayed group"),
      );
      await rw.close(60_000);
      log.info({ groups: res.length, evaluations: res.reduce((n, p) => n + p.evaluations, 0), samples: rw.sentSamples, dropped: rw.droppedSamples }, "replay finished");
      exitAfter(log, rw.droppedSamples > 0 || res.some((p) => p.errors > 0) ? 1 : 0);
    }

    const notifier = flags["notifier.url"].length === 0 ? undefined : new AlertmanagerNotifier(notifierTargets(flags), log);
    if (notifier !== undefined) {
      onShutdown({ name: "notifier", close: () => notifier.close() });
      metrics.counter("strata_alert_alerts_sent_total", "Alerts sent to Alertmanager.", () => notifier.targets.reduce((n, t) => n + t.sent, 0));
      metrics.counter("strata_alert_alerts_send_errors_total", "Failed requests to Alertmanager.", () => notifier.targets.reduce((n, t) => n + t.errors, 0));
    }
    const iterDuration = metrics.histogram("strata_alert_iteration_duration_seconds", "How long one evaluation of a group took.");
    const manager = new RuleManager({
      datasource,
      sink,
      ...(notifier !== undefined ? { notifier } : {}),
      defaultIntervalMs: flags.evaluationInterval,
      defaultQueryOffsetMs: flags["rule.queryOffset"],
      externalLabels,
      externalURL,
      resendDelayMs: flags["rule.resendDelay"],
      ...(flags["remoteRead.url"] !== ""
        ? { restore: { datasource: new HttpDatasource(flags["remoteRead.url"], clientOptions(flags, "remoteRead")), lookbackMs: flags["remoteRead.lookback"] } }
        : {}),
      onEvent,
      onIteration: (_g, ms) => iterDuration.observe(ms / 1000),
    });
    const sumGroups = (f: (g: RuleManager["list"][number]) => number) => () => manager.list.reduce((n, g) => n + f(g), 0);
    const countAlerts = (state: string) => sumGroups((g) => g.rules.reduce((n, r) => n + (r instanceof AlertingRule ? [...r.active.values()].filter((a) => a.state === state).length : 0), 0));
    metrics.gauge("strata_alert_alerts_firing", "Alerts firing now.", countAlerts("firing"));
    metrics.gauge("strata_alert_alerts_pending", "Alerts pending now.", countAlerts("pending"));
    metrics.gauge("strata_alert_groups", "Rule groups loaded.", () => manager.list.length);
    metrics.gauge("strata_alert_rules", "Rules loaded.", sumGroups((g) => g.rules.length));
    metrics.gauge("strata_alert_rules_with_errors", "Rules whose last evaluation failed.", sumGroups((g) => g.rules.filter((r) => r.health === "err").length));
    metrics.counter("strata_alert_iteration_total", "Group evaluations.", sumGroups((g) => g.iterations));
    metrics.counter("strata_alert_iteration_missed_total", "Group evaluations skipped because the previous one ran past its interval.", sumGroups((g) => g.missedIterations));

    await manager.update(configs);
    manager.start();
    onShutdown({ name: "rule groups", close: () => manager.stop() });

    let reloading: Promise<void> = Promise.resolve();
    const reload = (): Promise<void> => {
      reloading = reloading.then(async () => {
        const next = load();
        await manager.update(next);
        configs = next;
        log.info({ groups: next.length, rules: countRules(next) }, "reloaded rules");
      });
      const p = reloading;
      reloading = reloading.catch(() => undefined);
      return p;
    };
    process.on("SIGHUP", () => {
      reload().catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, "reload failed; the previous rules stay"));
    });

    const app = buildApp({
      manager,
      metrics,
      log,
      reload,
      security,
      reloadAuthKey: readSecret("reloadAuthKey", flags.reloadAuthKey),
      flags: displayFlags(alertFlags, flags),
      flagsAuthKey: readSecret("flagsAuthKey", flags.flagsAuthKey),
    });
    const { host } = parseListenAddr(flags.httpListenAddr);
    await app.listen({ host: host ?? "0.0.0.0", port });
    onShutdown({ name: "http server", close: () => app.close() });
    log.info({ addr: flags.httpListenAddr, groups: configs.length, rules: countRules(configs), datasource: flags["datasource.url"], notifiers: flags["notifier.url"] }, "evaluating rules");
  },
});
