import { defineFlags, flag, type FlagValues, type Logger, type MetricsRegistry } from "@strata/core";
import { AuthFailures } from "./failures.js";
import { HttpGuard } from "./guard.js";
import { readSecret } from "./secret.js";
import { CertReloader } from "./tls.js";

/** The listener security flags, named as in VictoriaMetrics; a service spreads them into its own. */
export const httpSecurityFlags = defineFlags({
  tls: flag.bool(false, "Whether to serve HTTPS at -httpListenAddr; -tlsCertFile and -tlsKeyFile must be set. The files are re-read when they change, without a restart."),
  tlsCertFile: flag.string("", "Path to the TLS certificate (PEM, chain allowed) when -tls is set. Checked for changes every second."),
  tlsKeyFile: flag.string("", "Path to the TLS private key (PEM) when -tls is set. Checked for changes every second."),
  tlsMinVersion: flag.string("TLS12", "Minimum TLS version accepted when -tls is set: TLS10, TLS11, TLS12 or TLS13."),
  tlsCipherSuites: flag.stringList([], "TLS 1.0–1.2 cipher suites accepted when -tls is set, by IANA name (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); empty: Node.js defaults. TLS 1.3 suites stay enabled."),
  "httpAuth.username": flag.string("", "Username for HTTP basic auth on this service's own endpoints (/metrics, /-/reload, …); empty disables it."),
  "httpAuth.password": flag.string("", "Password for -httpAuth.username; file:///path reads it from a file. Never logged."),
  metricsAuthKey: flag.string("", "Key that /metrics wants as the authKey query arg; overrides -httpAuth.* for /metrics; file:///path reads it from a file. Never logged."),
});

export interface HttpSecurity {
  /** Set when -tls is: the certificate pair, reloaded on change. */
  readonly certs: CertReloader | undefined;
  readonly guard: HttpGuard;
  /** Counts and logs refused requests (`strata_http_auth_failures_total{reason}`). */
  readonly failures: AuthFailures;
}

/** Reads the secrets (file:// allowed), loads the certificate, and builds the guard. */
export function httpSecurityFromFlags(values: FlagValues<typeof httpSecurityFlags>, log: Logger, metrics: MetricsRegistry): HttpSecurity {
  const certs = values.tls
    ? new CertReloader({
        flags: {
          enabled: true,
          certFile: values.tlsCertFile,
          keyFile: values.tlsKeyFile,
          minVersion: values.tlsMinVersion,
          cipherSuites: values.tlsCipherSuites,
        },
        log,
        metrics,
      })
    : undefined;
  const guard = new HttpGuard({
    username: values["httpAuth.username"],
    password: readSecret("httpAuth.password", values["httpAuth.password"]),
    metricsAuthKey: readSecret("metricsAuthKey", values.metricsAuthKey),
  });
  const failures = new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" });
  return { certs, guard, failures };
}
