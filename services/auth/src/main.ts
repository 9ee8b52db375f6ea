#!/usr/bin/env node
import { BadDataError, displayFlags, errorMessage, parseListenAddr, runService } from "@strata/core";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { AuthProxy, type LoadBalancingPolicy } from "@strata/proxy";
import { buildApp } from "./app.js";
import { loadAuthConfigFile } from "./config-file.js";
import { authFlags } from "./flags.js";

function statusCodes(list: readonly string[]): number[] {
  return list.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 100 || n > 599) throw new BadDataError(`-retryStatusCodes: ${JSON.stringify(s)} is not an HTTP status code`, "STRATA_INVALID_FLAG");
    return n;
  });
}

await runService({
  name: "strata-auth",
  summary: "Strata auth: authenticates users from a vmauth-format -auth.config, routes each to its tenants' backends, load-balances and proxies.",
  flags: authFlags,
  async start({ flags, log, metrics, onShutdown }) {
    const file = flags["auth.config"];
    if (file === "") throw new BadDataError("set -auth.config to the auth config file", "STRATA_INVALID_FLAG");
    const policy = flags.loadBalancingPolicy;
    if (policy !== "least_loaded" && policy !== "first_available") {
      throw new BadDataError(`-loadBalancingPolicy=${JSON.stringify(policy)}: want least_loaded or first_available`, "STRATA_INVALID_FLAG");
    }
    const defaults = {
      loadBalancingPolicy: policy as LoadBalancingPolicy,
      retryStatusCodes: statusCodes(flags.retryStatusCodes),
      failTimeoutMs: flags.failTimeout,
      maxConcurrentPerUserRequests: flags.maxConcurrentPerUserRequests,
    };
    const config = loadAuthConfigFile(file);
    const proxy = new AuthProxy(config, {
      ...defaults,
      log,
      metrics,
      file,
      maxConcurrentRequests: flags.maxConcurrentRequests,
      maxQueueDurationMs: flags.maxQueueDuration,
      maxRequestBodySizeToRetry: flags.maxRequestBodySizeToRetry,
      responseTimeoutMs: flags.responseTimeout,
      maxIdleConnsPerBackend: flags.maxIdleConnsPerBackend,
      removeXff: flags.removeXFFHTTPHeaderValue,
    });
    if (flags.dryRun) {
      proxy.close();
      process.stdout.write(`-auth.config=${file} is valid: ${proxy.userCount} users\n`);
      process.exit(0);
    }
    onShutdown({ name: "backend connections", close: () => proxy.close() });
    log.info({ users: proxy.userCount, file }, "loaded -auth.config");

    const reloads = metrics.counter("vmauth_config_last_reload_total", "Reloads of -auth.config tried (SIGHUP, /-/reload).");
    const reloadErrors = metrics.counter("vmauth_config_last_reload_errors_total", "Reloads of -auth.config refused because the file was bad.");
    const ok = metrics.gauge("vmauth_config_last_reload_successful", "1 when the last reload of -auth.config succeeded.");
    const okTime = metrics.gauge("vmauth_config_last_reload_success_timestamp_seconds", "When -auth.config was last loaded.");
    ok.set(1);
    okTime.set(Math.floor(Date.now() / 1000));
    const reload = (): string | undefined => {
      reloads.inc();
      try {
        proxy.reload(loadAuthConfigFile(file));
      } catch (err) {
        reloadErrors.inc();
        ok.set(0);
        log.error({ err: errorMessage(err), file }, "cannot reload -auth.config; the previous config stays in use");
        return errorMessage(err);
      }
      ok.set(1);
      okTime.set(Math.floor(Date.now() / 1000));
      log.info({ users: proxy.userCount, file }, "reloaded -auth.config");
      return undefined;
    };
    const onSighup = (): void => {
      log.info({ file }, "SIGHUP received; reloading -auth.config");
      reload();
    };
    process.on("SIGHUP", onSighup);
    onShutdown({ name: "SIGHUP reload", close: () => void process.off("SIGHUP", onSighup) });

    const security = httpSecurityFromFlags(flags, log, metrics);
    const app = buildApp({
      proxy,
      security,
      metrics,
      log,
      reload,
      reloadAuthKey: readSecret("reloadAuthKey", flags.reloadAuthKey),
      flags: displayFlags(authFlags, flags),
      flagsAuthKey: readSecret("flagsAuthKey", flags.flagsAuthKey),
    });
    const { host, port } = parseListenAddr(flags.httpListenAddr);
    await app.listen({ port, host: host ?? "0.0.0.0" });
    onShutdown({ name: "HTTP server", close: () => app.close() });
    const addr = app.server.address();
    log.info({ httpPort: typeof addr === "object" && addr ? addr.port : undefined, tls: flags.tls }, "listening");
  },
});
