import { readFileSync, statSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { BadDataError, defineFlags, errorMessage, flag, type FlagValues, type Logger } from "@strata/core";
import { CertReloader } from "@strata/httpsec";

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * The mTLS flags of the cluster links (insert → storage, select → storage), named as in
 * VictoriaMetrics enterprise. Storage takes them for its two gRPC ports, insert and select for
 * their clients.
 */
export const clusterTlsServerFlags = defineFlags({
  "cluster.tls": flag.bool(false, "Use mTLS on the cluster gRPC links: storage serves TLS and refuses clients without a certificate signed by -cluster.tlsCAFile; insert and select present -cluster.tlsCertFile."),
  "cluster.tlsCAFile": flag.string("", "CA certificate (PEM) that signs the other side's certificate on the cluster links. Re-read when it changes."),
  "cluster.tlsCertFile": flag.string("", "This node's certificate (PEM) on the cluster links. Re-read when it changes."),
  "cluster.tlsKeyFile": flag.string("", "Private key (PEM) of -cluster.tlsCertFile. Re-read when it changes."),
});

/** The flags of the clients (insert, select): the server's four and how the servers are checked. */
export const clusterTlsFlags = defineFlags({
  ...clusterTlsServerFlags,
  "cluster.tlsServerName": flag.string("", "Name checked in the storage nodes' certificates (insert, select); empty: the host of each -storageNode address."),
  "cluster.tlsInsecureSkipVerify": flag.bool(false, "Do not verify the storage nodes' certificates (insert, select). For tests only: anyone on the path can read and change the traffic."),
});

export type ClusterTlsFlagValues = FlagValues<typeof clusterTlsServerFlags> & Partial<FlagValues<typeof clusterTlsFlags>>;

function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
}

function loadCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new BadDataError(`-cluster.tlsCAFile=${file}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new BadDataError(`-cluster.tlsCAFile=${file}: not a PEM certificate: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  return pem;
}

export interface ClusterTlsOptions {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly serverName: string;
  readonly insecureSkipVerify: boolean;
  readonly log: Logger;
  /** How often the files are checked for changes (default: every second). */
  readonly checkIntervalMs?: number;
}

/**
 * The certificates of one process on the cluster links: its own pair (through httpsec's
 * CertReloader: checked every second, a pair that does not load is refused and the previous
 * one kept) and the CA it trusts. It is a grpc-js certificate provider, so a server bound with
 * `serverCredentials()` and channels made with `channelCredentials()` use the new files for new
 * connections without a restart.
 */
export class ClusterTls implements grpc.experimental.CertificateProvider {
  private readonly pair: CertReloader;
  private ca: Buffer;
  private caStamp: string;
  private caFailedStamp = "";
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: ClusterTlsOptions) {
    if (opts.caFile === "") throw new BadDataError("-cluster.tls needs -cluster.tlsCAFile", "STRATA_INVALID_FLAG");
    this.pair = new CertReloader({
      flags: { enabled: true, certFile: opts.certFile, keyFile: opts.keyFile, minVersion: "TLS12", cipherSuites: [], flagPrefix: "cluster." },
      log: opts.log,
      ...(opts.checkIntervalMs !== undefined ? { checkIntervalMs: opts.checkIntervalMs } : {}),
    });
    this.caStamp = stampOf(opts.caFile);
    this.ca = loadCa(opts.caFile);
    this.pair.watch({ setSecureContext: () => this.emitIdentity() });
    this.timer = setInterval(() => this.checkCa(), opts.checkIntervalMs ?? 1000);
    this.timer.unref();
    if (opts.insecureSkipVerify) {
      opts.log.warn("-cluster.tlsInsecureSkipVerify is set: storage nodes' certificates are not verified; use it in tests only");
    }
  }

  private identity(): grpc.experimental.IdentityCertificateUpdate {
    const o = this.pair.secureContextOptions();
    return { certificate: o.cert as Buffer, privateKey: o.key as Buffer };
  }

  private emitIdentity(): void {
    const u = this.identity();
    for (const l of this.identityListeners) l(u);
  }

  private checkCa(): void {
    const stamp = stampOf(this.opts.caFile);
    if (stamp === this.caStamp || stamp === "missing") return;
    try {
      this.ca = loadCa(this.opts.caFile);
      this.caStamp = stamp;
      this.caFailedStamp = "";
      this.opts.log.info({ caFile: this.opts.caFile }, "cluster TLS CA reloaded");
      for (const l of this.caListeners) l({ caCertificate: this.ca });
    } catch (err) {
      if (stamp === this.caFailedStamp) return;
      this.caFailedStamp = stamp;
      this.opts.log.error({ err: errorMessage(err) }, "cannot reload the cluster TLS CA; still using the previous one");
    }
  }

  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    process.nextTick(l, { caCertificate: this.ca });
  }

  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.add(l);
    process.nextTick(l, this.identity());
  }

  removeIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.delete(l);
  }

  /** For storage's gRPC ports: TLS, and a client certificate signed by the CA is required. */
  serverCredentials(): grpc.ServerCredentials {
    // This one provider is both the CA and the identity provider.
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, true);
  }

  /** For insert's and select's channels to storage: the CA check, and this node's certificate. */
  channelCredentials(): grpc.ChannelCredentials {
    const verify: grpc.VerifyOptions = this.opts.insecureSkipVerify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {};
    return grpc.experimental.createCertificateProviderChannelCredentials(this, this, verify);
  }

  /** Channel options that go with channelCredentials (the name checked in the server's certificate). */
  channelOptions(): grpc.ChannelOptions {
    return this.opts.serverName !== "" ? { "grpc.ssl_target_name_override": this.opts.serverName, "grpc.default_authority": this.opts.serverName } : {};
  }

  close(): void {
    clearInterval(this.timer);
    this.pair.close();
  }
}

/** The cluster links' TLS from the flags; undefined without -cluster.tls. */
export function clusterTlsFromFlags(v: ClusterTlsFlagValues, log: Logger): ClusterTls | undefined {
  if (!v["cluster.tls"]) return undefined;
  return new ClusterTls({
    caFile: v["cluster.tlsCAFile"],
    certFile: v["cluster.tlsCertFile"],
    keyFile: v["cluster.tlsKeyFile"],
    serverName: v["cluster.tlsServerName"] ?? "",
    insecureSkipVerify: v["cluster.tlsInsecureSkipVerify"] ?? false,
    log,
  });
}

/** Credentials and options of a client channel to a storage node: plain without TLS. */
export interface ChannelSecurity {
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
}

export function channelSecurity(tls: ClusterTls | undefined): ChannelSecurity {
  return tls ? { credentials: tls.channelCredentials(), options: tls.channelOptions() } : { credentials: grpc.credentials.createInsecure(), options: {} };
}
