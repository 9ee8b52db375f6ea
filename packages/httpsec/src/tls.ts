import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { statSync, readFileSync } from "node:fs";
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContextOptions, type SecureVersion } from "node:tls";
import { BadDataError, errorMessage, type Logger, type MetricsRegistry } from "@strata/core";

/** The TLS flags every service takes (`-tls`, `-tlsCertFile`, …), already parsed. */
export interface TlsFlags {
  readonly enabled: boolean;
  readonly certFile: string;
  readonly keyFile: string;
  /** `TLS10`, `TLS11`, `TLS12` or `TLS13` (VictoriaMetrics' spelling); "" means TLS12. */
  readonly minVersion: string;
  /** IANA names as Go spells them (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`) or OpenSSL names. */
  readonly cipherSuites: readonly string[];
}

const MIN_VERSIONS: Readonly<Record<string, SecureVersion>> = {
  TLS10: "TLSv1",
  TLS11: "TLSv1.1",
  TLS12: "TLSv1.2",
  TLS13: "TLSv1.3",
};

/** Go's (IANA) names of the TLS 1.0–1.2 suites mapped to OpenSSL's. */
const IANA_TO_OPENSSL: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: "ECDHE-ECDSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: "ECDHE-RSA-AES128-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
  TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
  TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
  TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
  TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
};

/** TLS 1.3 suites: Go does not let them be configured, so a -tlsCipherSuites list keeps them. */
const TLS13_SUITES = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"];

/** Validates the TLS flags and turns them into the options every secure context shares. */
export function tlsBaseOptions(flags: TlsFlags): { minVersion: SecureVersion; ciphers?: string } {
  const mv = flags.minVersion === "" ? "TLS12" : flags.minVersion.toUpperCase();
  const minVersion = MIN_VERSIONS[mv];
  if (minVersion === undefined) {
    throw new BadDataError(`-tlsMinVersion=${JSON.stringify(flags.minVersion)}: want TLS10, TLS11, TLS12 or TLS13`, "STRATA_INVALID_FLAG");
  }
  if (flags.cipherSuites.length === 0) return { minVersion };
  const names: string[] = [];
  for (const s of flags.cipherSuites) {
    if (TLS13_SUITES.includes(s)) continue;
    const openssl = IANA_TO_OPENSSL[s] ?? (/^[A-Z0-9]+(-[A-Z0-9]+)+$/.test(s) ? s : undefined);
    if (openssl === undefined) {
      throw new BadDataError(`-tlsCipherSuites: unknown cipher suite ${JSON.stringify(s)} (want e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)`, "STRATA_INVALID_FLAG");
    }
    names.push(openssl);
  }
  const ciphers = [...TLS13_SUITES, ...names].join(":");
  try {
    createSecureContext({ ciphers });
  } catch (err) {
    throw new BadDataError(`-tlsCipherSuites: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  return { minVersion, ciphers };
}

interface LoadedPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly notAfterSeconds: number;
}

function fileStamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Reads and checks a certificate chain and its key; throws naming the file that is wrong. */
function loadPair(certFile: string, keyFile: string): LoadedPair {
  let cert: Buffer;
  let keyPem: Buffer;
  try {
    cert = readFileSync(certFile);
  } catch (err) {
    throw new BadDataError(`-tlsCertFile=${certFile}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  try {
    keyPem = readFileSync(keyFile);
  } catch (err) {
    throw new BadDataError(`-tlsKeyFile=${keyFile}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new BadDataError(`-tlsCertFile=${certFile}: not a PEM certificate: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    // The message of a key parse error never contains key material.
    throw new BadDataError(`-tlsKeyFile=${keyFile}: not a PEM private key: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  if (!x509.checkPrivateKey(key)) {
    throw new BadDataError(`-tlsKeyFile=${keyFile} does not belong to the certificate in -tlsCertFile=${certFile}`, "STRATA_INVALID_FLAG");
  }
  return { cert, key: keyPem, notAfterSeconds: Math.floor(Date.parse(x509.validTo) / 1000) };
}

export interface CertReloaderOptions {
  readonly flags: TlsFlags;
  readonly log: Logger;
  readonly metrics?: MetricsRegistry;
  /** How often the files are checked for changes (VictoriaMetrics: every second). */
  readonly checkIntervalMs?: number;
}

/**
 * The certificate and key of a TLS listener, re-read when either file changes (checked every
 * second by inode, size and mtime, so both an in-place write and a rename over the file are
 * seen). A pair that does not load (half-written, key of another certificate) is refused with
 * an error log and retried on the next check; the listener keeps serving the last good pair.
 */
export class CertReloader {
  private readonly base: { minVersion: SecureVersion; ciphers?: string };
  private stamp = "";
  private failedStamp = "";
  private pair: LoadedPair;
  private timer: NodeJS.Timeout | undefined;
  private server: { setSecureContext(o: SecureContextOptions): void } | undefined;
  private readonly reloads;
  private readonly errors;

  constructor(private readonly opts: CertReloaderOptions) {
    if (opts.flags.certFile === "" || opts.flags.keyFile === "") {
      throw new BadDataError("-tls needs -tlsCertFile and -tlsKeyFile", "STRATA_INVALID_FLAG");
    }
    this.base = tlsBaseOptions(opts.flags);
    this.stamp = this.currentStamp();
    this.pair = loadPair(opts.flags.certFile, opts.flags.keyFile);
    const m = opts.metrics;
    this.reloads = m?.counter("strata_tls_certificate_reloads_total", "Times the TLS certificate and key were re-read after their files changed.");
    this.errors = m?.counter("strata_tls_certificate_reload_errors_total", "Changed TLS certificate files that could not be loaded (the previous pair stays in use).");
    m?.gauge("strata_tls_certificate_expiry_timestamp_seconds", "Expiry (notAfter) of the TLS certificate being served.", () => this.pair.notAfterSeconds);
  }

  private currentStamp(): string {
    try {
      return `${fileStamp(this.opts.flags.certFile)}|${fileStamp(this.opts.flags.keyFile)}`;
    } catch {
      return "missing";
    }
  }

  /** Options for https.createServer / setSecureContext with the current pair. */
  secureContextOptions(): SecureContextOptions {
    return { ...this.base, cert: this.pair.cert, key: this.pair.key };
  }

  /** Starts watching; the server's secure context is replaced on every good change. */
  watch(server: { setSecureContext(o: SecureContextOptions): void }): void {
    this.server = server;
    this.timer = setInterval(() => this.check(), this.opts.checkIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** One check of the files (the timer calls it; tests may too). */
  check(): void {
    const stamp = this.currentStamp();
    if (stamp === this.stamp || stamp === "missing") return;
    try {
      this.pair = loadPair(this.opts.flags.certFile, this.opts.flags.keyFile);
      this.server?.setSecureContext(this.secureContextOptions());
      this.stamp = stamp;
      this.failedStamp = "";
      this.reloads?.inc();
      this.opts.log.info({ certFile: this.opts.flags.certFile, notAfter: new Date(this.pair.notAfterSeconds * 1000).toISOString() }, "TLS certificate reloaded");
    } catch (err) {
      if (stamp !== this.failedStamp) {
        this.failedStamp = stamp;
        this.errors?.inc();
        this.opts.log.error({ err: errorMessage(err) }, "cannot reload the TLS certificate; still serving the previous one");
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An HTTP or (with a CertReloader) HTTPS server for `handler`, in the shape fastify's
 * `serverFactory` wants. With TLS the reloader starts watching the certificate files.
 */
export function createServer(handler: RequestListener, certs: CertReloader | undefined): Server {
  if (certs === undefined) return createHttpServer(handler);
  const server = createHttpsServer(certs.secureContextOptions(), handler);
  certs.watch(server);
  server.on("close", () => certs.close());
  return server;
}
