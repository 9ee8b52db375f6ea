import { copyFileSync, readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { createLogger } from "@strata/core";
import { addService, cluster, ClusterTls, createInsertClient, grpc, InsertServiceDefinition } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
