import { createServer, type Http2Session, type Settings } from "node:http2";
import type { AddressInfo } from "node:net";
import { expect, it } from "vitest";
import { createLogger, MetricsRegistry } from "@strata/core";
import { ClusterSelectBackend, SEARCH_FLOW_CONTROL_WINDOW } from "../src/select-backend.js";

const log = createLogger({ name: "test", level: "silent" });

it("opens its storage-node channels with a wide HTTP/2 flow-control window (searches stream megabytes)", async () => {
  // A plain HTTP/2 server on loopback stands where a storage node's search port would be: what
  // matters is the SETTINGS frame select's channel sends when it connects (its WatchIndex_v1
  // stream connects at once).
  const sessions: Http2Session[] = [];
  const server = createServer();
  const settings = new Promise<Settings>((resolve) => {
    server.on("session", (s) => {
      sessions.push(s);
      s.once("remoteSettings", resolve);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const backend = new ClusterSelectBackend({ nodes: [addr], replicationFactor: 1, dedupIntervalMs: 0, skipSlowReplicas: true, log, metrics: new MetricsRegistry() });
  try {
    expect((await settings).initialWindowSize).toBe(SEARCH_FLOW_CONTROL_WINDOW);
    expect(SEARCH_FLOW_CONTROL_WINDOW).toBeGreaterThanOrEqual(1 << 20);
  } finally {
    await backend.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
