import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Certificates made at test time with the openssl command (never committed keys): a CA and
 * server certificates it signs for 127.0.0.1/localhost. EC P-256 keys, valid one day.
 */

export interface TestCa {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
}

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly serial: string;
}

function openssl(args: readonly string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export function makeCa(dir: string, name: string): TestCa {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", `/CN=${name}`]);
  return { certFile, keyFile, certPem: openssl(["x509", "-in", certFile]) };
}

/** A server certificate for 127.0.0.1 and localhost (or `san`) signed by `ca`; `serial` tells two apart. */
export function makeServerCert(dir: string, name: string, ca: TestCa, san = "IP:127.0.0.1,DNS:localhost"): TestCert {
  return signCert(dir, name, ca, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
}

/**
 * A server certificate for 127.0.0.1/localhost signed by `ca` that expired years ago (valid only
 * on 2020-01-01): `openssl x509` cannot date a certificate in the past, `openssl ca` can.
 */
export function makeExpiredServerCert(dir: string, name: string, ca: TestCa): TestCert {
  const work = join(dir, `${name}-ca`);
  mkdirSync(work, { recursive: true });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(work, "req.csr");
  writeFileSync(join(work, "index.txt"), "");
  writeFileSync(join(work, "serial"), "01\n");
  writeFileSync(join(work, "ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  const cfg = join(work, "ca.cnf");
  writeFileSync(cfg, `[ca]\ndefault_ca=test\n[test]\ndatabase=${join(work, "index.txt")}\nnew_certs_dir=${work}\nserial=${join(work, "serial")}\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n`);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", csr, "-subj", `/CN=${name}`]);
  openssl(["ca", "-batch", "-config", cfg, "-cert", ca.certFile, "-keyfile", ca.keyFile, "-in", csr, "-out", certFile, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", join(work, "ext"), "-notext"]);
  const text = openssl(["x509", "-in", certFile, "-noout", "-serial"]);
  return { certFile, keyFile, serial: text.trim().replace(/^serial=/, "").toUpperCase() };
}

/** A client certificate (for mTLS: insert and select towards storage) signed by `ca`. */
export function makeClientCert(dir: string, name: string, ca: TestCa): TestCert {
  return signCert(dir, name, ca, "extendedKeyUsage=clientAuth\n");
}

function signCert(dir: string, name: string, ca: TestCa, extensions: string): TestCert {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", csr, "-subj", `/CN=${name}`]);
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`;
  openssl(["x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-set_serial", serial, "-out", certFile, "-days", "1", "-extfile", ext]);
  const text = openssl(["x509", "-in", certFile, "-noout", "-serial"]);
  return { certFile, keyFile, serial: text.trim().replace(/^serial=/, "").toUpperCase() };
}

/** The -cluster.tls* flags of a cluster whose storage nodes and clients trust `ca`. */
export interface ClusterCerts {
  readonly ca: TestCa;
  readonly storageFlags: readonly string[];
  readonly clientFlags: readonly string[];
}

export function makeClusterCerts(dir: string): ClusterCerts {
  const ca = makeCa(dir, "cluster-ca");
  const server = makeServerCert(dir, "storage", ca);
  const client = makeClientCert(dir, "client", ca);
  const flags = (c: TestCert) => ["-cluster.tls", `-cluster.tlsCAFile=${ca.certFile}`, `-cluster.tlsCertFile=${c.certFile}`, `-cluster.tlsKeyFile=${c.keyFile}`];
  return { ca, storageFlags: flags(server), clientFlags: flags(client) };
}
