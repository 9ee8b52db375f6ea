import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, remoteWrite, type TestSeries } from "./lib/cluster.js";
import { hasCommand, repoRoot } from "./lib/procs.js";

/**
 * Each service in its own container on one private Docker network (testcontainers), from the
 * strata:local image built FROM scratch out of this checkout (deploy/docker/build-image.sh).
 * No image is pulled: Ryuk (testcontainers' reaper image) is disabled and every container is
 * stopped in afterAll.
 */
process.env["TESTCONTAINERS_RYUK_DISABLED"] = "true";
const { GenericContainer, Network, Wait } = await import("testcontainers");
type Started = Awaited<ReturnType<InstanceType<typeof GenericContainer>["start"]>>;
type StartedNet = Awaited<ReturnType<InstanceType<typeof Network>["start"]>>;

function dockerUsable(): boolean {
  return hasCommand("docker") && spawnSync("docker", ["info"], { stdio: "ignore" }).status === 0;
}

const usable = dockerUsable() && clusterBuilt();
if (!usable && process.env["CI"] === "true") {
  throw new Error("containers suite needs a running Docker engine (.ci/run starts dockerd) and built services");
}
if (!usable) console.warn("skipping the containers suite: no Docker engine or services not built");

const IMAGE = "strata:containers-test";
const NOW = Math.floor(Date.now() / 15_000) * 15_000;
const series: TestSeries[] = Array.from({ length: 20 }, (_, i) => ({
  labels: { __name__: "container_test_metric", instance: `i-${i}` },
  samples: [
    [NOW - 15_000, i],
    [NOW, i + 1],
  ],
}));

describe.skipIf(!usable)("Strata in containers", () => {
  let net: StartedNet;
  const storage: Started[] = [];
  let insert: Started;
  let select: Started;
  let insertUrl = "";
  let selectUrl = "";

  const storageContainer = (name: string) =>
    new GenericContainer(IMAGE)
      .withNetwork(net)
      .withNetworkAliases(name)
      .withName(`strata-test-${name}-${process.pid}`)
      .withCommand(["/opt/strata/services/storage/dist/main.js", "-storageDataPath=/data/strata"])
      .withExposedPorts(8482)
      .withWaitStrategy(Wait.forHttp("/health", 8482).forStatusCode(200))
      .start();

  const count = async (): Promise<{ value: string; isPartial: boolean }> => {
    const r = await fetch(`${selectUrl}/select/0/prometheus/api/v1/query?query=count(container_test_metric)&time=${NOW / 1000}`);
    const body = (await r.json()) as { isPartial: boolean; data: { result: { value: [number, string] }[] } };
    return { value: body.data.result[0]?.value[1] ?? "none", isPartial: body.isPartial };
  };

  beforeAll(async () => {
    execFileSync("bash", ["deploy/docker/build-image.sh", IMAGE], { cwd: repoRoot, stdio: "inherit" });
    net = await new Network().start();
    storage.push(...(await Promise.all([storageContainer("storage-1"), storageContainer("storage-2")])));
    const nodes = (port: number) => `-storageNode=storage-1:${port},storage-2:${port}`;
    [insert, select] = await Promise.all([
      new GenericContainer(IMAGE)
        .withNetwork(net)
        .withCommand(["/opt/strata/services/insert/dist/main.js", nodes(8400), "-replicationFactor=2"])
        .withExposedPorts(8480)
        .withWaitStrategy(Wait.forHttp("/health", 8480).forStatusCode(200))
        .start(),
      new GenericContainer(IMAGE)
        .withNetwork(net)
        .withCommand(["/opt/strata/services/select/dist/main.js", nodes(8401), "-replicationFactor=2", "-search.disableCache"])
        .withExposedPorts(8481)
        .withWaitStrategy(Wait.forHttp("/health", 8481).forStatusCode(200))
        .start(),
    ]);
    insertUrl = `http://${insert.getHost()}:${insert.getMappedPort(8480)}`;
    selectUrl = `http://${select.getHost()}:${select.getMappedPort(8481)}`;
  }, 300_000);

  afterAll(async () => {
    for (const c of [insert, select, ...storage]) await c?.stop({ timeout: 20_000 }).catch(() => undefined);
    await net?.stop().catch(() => undefined);
    spawnSync("docker", ["image", "rm", "-f", IMAGE], { stdio: "ignore" });
  }, 120_000);

  it("ingests through insert and answers through select", async () => {
    const w = await remoteWrite(insertUrl, series);
    expect(w.status, w.text).toBe(204);
    await Promise.all(storage.map((s) => fetch(`http://${s.getHost()}:${s.getMappedPort(8482)}/internal/force_flush`)));
    expect(await count()).toEqual({ value: "20", isPartial: false });
  });

  it("keeps the data of a storage container that is stopped and started again", async () => {
    const s = storage[0]!;
    await s.restart({ timeout: 30_000 });
    await waitFor(async () => (await fetch(`http://${s.getHost()}:${s.getMappedPort(8482)}/health`)).ok);
    // With storage-2 disconnected, every answer has to come from the restarted storage-1.
    execFileSync("docker", ["network", "disconnect", net.getName(), storage[1]!.getId()]);
    try {
      await waitFor(async () => (await count()).value === "20");
      expect((await count()).value).toBe("20");
    } finally {
      execFileSync("docker", ["network", "connect", "--alias", "storage-2", net.getName(), storage[1]!.getId()]);
    }
  });

  it("answers completely with RF=2 while one storage container is cut off the network", async () => {
    execFileSync("docker", ["network", "disconnect", net.getName(), storage[0]!.getId()]);
    try {
      await waitFor(async () => (await count()).value === "20");
      expect(await count()).toEqual({ value: "20", isPartial: false });
    } finally {
      execFileSync("docker", ["network", "connect", "--alias", "storage-1", net.getName(), storage[0]!.getId()]);
    }
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}
