import { copyFileSync, readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { createLogger } from "@strata/core";
import { addService, channelSecurity, cluster, ClusterTls, createInsertClient, grpc, InsertServiceDefinition, type ChannelSecurity } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { makeCa, makeClientCert, makeServerCert, type TestCa, type TestCert } from "../../../test/lib/certs.js";
import { tempDir } from "../../../test/lib/procs.js";

/**
 * ClusterTls on a real grpc-js server on loopback: a client certificate signed by the CA is
 * required, and the server's pair and the CA are re-read when their files change (new
 * connections see them, no restart); a pair that does not load leaves the previous in use.
 */
describe("ClusterTls: mTLS server credentials with reload", () => {
  const dir = tempDir("rpc-tls");
  const log = createLogger({ name: "rpc-tls-test", level: "silent" });
  let ca1: TestCa;
  let ca2: TestCa;
  let client1: TestCert;
  let client2: TestCert;
  let tls: ClusterTls;
  const server = new grpc.Server();
  let port = 0;
  const paths = { ca: `${dir.path}/ca.crt`, cert: `${dir.path}/node.crt`, key: `${dir.path}/node.key` };

  beforeAll(async () => {
    ca1 = makeCa(dir.path, "ca1");
    ca2 = makeCa(dir.path, "ca2");
    client1 = makeClientCert(dir.path, "client1", ca1);
    client2 = makeClientCert(dir.path, "client2", ca2);
    const s1 = makeServerCert(dir.path, "server1", ca1);
    copyFileSync(ca1.certFile, paths.ca);
    copyFileSync(s1.certFile, paths.cert);
    copyFileSync(s1.keyFile, paths.key);
    tls = new ClusterTls({ caFile: paths.ca, certFile: paths.cert, keyFile: paths.key, serverName: "", insecureSkipVerify: false, log, checkIntervalMs: 50 });
    addService(server, InsertServiceDefinition, {
      WriteRows_v1: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      WriteMetadata_v1: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      Ping_v1: (_call, cb) => cb(null, create(cluster.PingResponseSchema, { nodeId: "n1", ready: true })),
    });
    port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", tls.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
  });
  afterAll(() => {
    server.forceShutdown();
    tls.close();
    dir.remove();
  });

  /** Pings over a new channel trusting `ca` and presenting `client`; resolves with the server certificate's serial. */
  async function ping(ca: TestCa, client: TestCert | undefined): Promise<string> {
    let serial = "";
    const creds = grpc.credentials.createSsl(readFileSync(ca.certFile), client ? readFileSync(client.keyFile) : null, client ? readFileSync(client.certFile) : null, {
      checkServerIdentity: (_host, cert) => {
        serial = cert.serialNumber.toUpperCase();
        return undefined;
      },
    });
    const c = createInsertClient(`localhost:${port}`, { "grpc.use_local_subchannel_pool": 1 }, creds);
    try {
      await c.unary("Ping_v1", create(cluster.PingRequestSchema), { deadline: Date.now() + 5000 });
      return serial;
    } finally {
      c.close();
    }
  }

  async function eventually(f: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await f();
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  it("serves a client whose certificate the CA signed; refuses one without a certificate or of another CA", async () => {
    expect(await ping(ca1, client1)).not.toBe("");
    await expect(ping(ca1, undefined)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(ping(ca1, client2)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it("serves a renewed certificate to new connections; keeps the previous pair when the new one does not load", async () => {
    const s2 = makeServerCert(dir.path, "server2", ca1);
    copyFileSync(s2.keyFile, paths.key);
    copyFileSync(s2.certFile, paths.cert);
    await eventually(async () => expect(await ping(ca1, client1)).toBe(s2.serial));
    // A certificate whose key is not written yet: refused, s2 stays in use.
    const s3 = makeServerCert(dir.path, "server3", ca1);
    copyFileSync(s3.certFile, paths.cert);
    await new Promise((r) => setTimeout(r, 300));
    expect(await ping(ca1, client1)).toBe(s2.serial);
    copyFileSync(s3.keyFile, paths.key);
    await eventually(async () => expect(await ping(ca1, client1)).toBe(s3.serial));
  });

  it("trusts a replaced CA for new connections", async () => {
    copyFileSync(ca2.certFile, paths.ca);
    await eventually(async () => expect(await ping(ca1, client2)).not.toBe(""));
    await expect(ping(ca1, client1)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});

describe("ClusterTls: client credentials with reload", () => {
  const dir = tempDir("rpc-tls-client");
  const log = createLogger({ name: "rpc-tls-client-test", level: "silent" });
  const server = new grpc.Server();
  let port = 0;
  let ca: TestCa;
  let otherCa: TestCa;
  const paths = { cert: `${dir.path}/client.crt`, key: `${dir.path}/client.key` };
  const clients: ClusterTls[] = [];

  beforeAll(async () => {
    ca = makeCa(dir.path, "ca");
    otherCa = makeCa(dir.path, "other");
    const s = makeServerCert(dir.path, "server", ca);
    // The server answers each ping with the serial of the client certificate it was shown.
    addService(server, InsertServiceDefinition, {
      WriteRows_v1: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      WriteMetadata_v1: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      Ping_v1: (call, cb) =>
        cb(null, create(cluster.PingResponseSchema, { nodeId: (call.getAuthContext().sslPeerCertificate?.serialNumber ?? "").toUpperCase(), ready: true })),
    });
    const creds = grpc.ServerCredentials.createSsl(readFileSync(ca.certFile), [{ cert_chain: readFileSync(s.certFile), private_key: readFileSync(s.keyFile) }], true);
    port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))));
  });
  afterAll(() => {
    server.forceShutdown();
    for (const c of clients) c.close();
    dir.remove();
  });

  function clientTls(caFile: string, insecureSkipVerify: boolean): ClusterTls {
    const t = new ClusterTls({ caFile, certFile: paths.cert, keyFile: paths.key, serverName: "localhost", insecureSkipVerify, log, checkIntervalMs: 50 });
    clients.push(t);
    return t;
  }

  /** A ping over a new channel (a new connection) with credentials made once, as insert and select do. */
  async function ping(sec: ChannelSecurity): Promise<string> {
    const c = createInsertClient(`127.0.0.1:${port}`, { ...sec.options, "grpc.use_local_subchannel_pool": 1 }, sec.credentials);
    try {
      return (await c.unary("Ping_v1", create(cluster.PingRequestSchema), { deadline: Date.now() + 5000 })).nodeId;
    } finally {
      c.close();
    }
  }

  it("presents its certificate, and a renewed one on new connections", async () => {
    const c1 = makeClientCert(dir.path, "c1", ca);
    copyFileSync(c1.certFile, paths.cert);
    copyFileSync(c1.keyFile, paths.key);
    const sec = channelSecurity(clientTls(ca.certFile, false));
    // A channel that stays open keeps the credentials watching (as a storage node's channel in insert does).
    const kept = createInsertClient(`127.0.0.1:${port}`, { ...sec.options, "grpc.use_local_subchannel_pool": 1 }, sec.credentials);
    onTestFinished(() => kept.close());
    expect((await kept.unary("Ping_v1", create(cluster.PingRequestSchema), { deadline: Date.now() + 5000 })).nodeId).toBe(c1.serial);
    expect(await ping(sec)).toBe(c1.serial);
    const c2 = makeClientCert(dir.path, "c2", ca);
    copyFileSync(c2.keyFile, paths.key);
    copyFileSync(c2.certFile, paths.cert);
    const deadline = Date.now() + 10_000;
    let serial = "";
    while (Date.now() < deadline && (serial = await ping(sec)) !== c2.serial) await new Promise((r) => setTimeout(r, 100));
    expect(serial).toBe(c2.serial);
  });

  it("checks the server against the CA unless -cluster.tlsInsecureSkipVerify", async () => {
    await expect(ping(channelSecurity(clientTls(otherCa.certFile, false)))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await ping(channelSecurity(clientTls(otherCa.certFile, true)))).not.toBe("");
  });
});
