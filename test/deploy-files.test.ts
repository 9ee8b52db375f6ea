import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { isBuilt, repoRoot, requirePeer, serviceMain } from "./lib/procs.js";
import { UNIT_NODE_ARGS } from "./lib/cluster.js";

/**
 * The files under deploy/ that no other test runs: the compose file and the Kubernetes
 * manifests must start existing services with flags those services accept and point at each
 * other's real ports; the example prometheus.yml must pass `promtool check config`, the example
 * rules `promtool check rules` and `strata-alert -dryRun`, and the Grafana data source must
 * point at select's Prometheus API. (The image itself is built and run by
 * test/containers.test.ts; the systemd units by test/systemd.test.ts.)
 */

const deploy = join(repoRoot, "deploy");
const services = ["storage", "insert", "select"] as const;
type Service = (typeof services)[number];

const flagsOf = new Map<Service, Set<string>>();
function knownFlags(name: Service): Set<string> {
  let s = flagsOf.get(name);
  if (s === undefined) {
    const r = spawnSync(process.execPath, [serviceMain(name), "-help"], { encoding: "utf8" });
    s = new Set([...`${r.stdout}${r.stderr}`.matchAll(/^ {2}-([A-Za-z0-9_.]+) /gm)].map((m) => m[1]!));
    flagsOf.set(name, s);
  }
  return s;
}

/** Checks one container command line: node script of a built service, known flags; returns the service and its flags. */
function checkCommand(where: string, command: readonly string[]): { service: Service; flags: Map<string, string> } {
  const script = command.findIndex((a) => !a.startsWith("--"));
  const argv = command.slice(script);
  const m = /^\/opt\/strata\/services\/(storage|insert|select)\/dist\/main\.js$/.exec(argv[0] ?? "");
  expect(m, `${where}: first argument is a service's main.js, got ${argv[0]}`).not.toBeNull();
  const service = m![1] as Service;
  // Node.js options before the script: the systemd units' (and the test cluster's) own.
  expect(command.slice(0, script), `${where}: node options as the systemd unit's`).toEqual(UNIT_NODE_ARGS[service]);
  expect(existsSync(join(repoRoot, argv[0]!.replace("/opt/strata/", ""))), `${where}: ${argv[0]} is built`).toBe(true);
  const flags = new Map<string, string>();
  for (const a of argv.slice(1)) {
    const f = /^-([^=]+)=(.*)$/.exec(a);
    expect(f, `${where}: ${a} is -flag=value`).not.toBeNull();
    expect(knownFlags(service).has(f![1]!), `${where}: strata-${service} knows -${f![1]}`).toBe(true);
    flags.set(f![1]!, f![2]!);
  }
  return { service, flags };
}

const DEFAULT_PORTS = { insertRpc: 8400, selectRpc: 8401, storageHttp: 8482, insertHttp: 8480, selectHttp: 8481 };

describe.skipIf(!services.every(isBuilt))("deploy/ files", () => {
  it("compose.yml: 2 storage + insert + select from the image, wired to each other's RPC ports", () => {
    interface Compose { services: Record<string, { image: string; command: string[]; ports?: string[]; volumes?: string[] }> }
    const doc = parse(readFileSync(join(deploy, "docker", "compose.yml"), "utf8")) as Compose;
    const byService = new Map<Service, string[]>();
    for (const [name, svc] of Object.entries(doc.services)) {
      expect(svc.image, name).toBe("strata:local");
      const { service, flags } = checkCommand(`compose ${name}`, svc.command);
      byService.set(service, [...(byService.get(service) ?? []), name]);
      if (service === "storage") {
        expect(svc.volumes?.some((v) => v.endsWith(`:${flags.get("storageDataPath")}`)), `${name}: -storageDataPath is on a volume`).toBe(true);
      } else {
        const port = service === "insert" ? DEFAULT_PORTS.insertRpc : DEFAULT_PORTS.selectRpc;
        expect(flags.get("storageNode")?.split(","), name).toEqual(byService.get("storage")?.map((s) => `${s}:${port}`));
        expect(svc.ports, name).toEqual([`${service === "insert" ? DEFAULT_PORTS.insertHttp : DEFAULT_PORTS.selectHttp}:${service === "insert" ? DEFAULT_PORTS.insertHttp : DEFAULT_PORTS.selectHttp}`]);
      }
    }
    expect(byService.get("storage")).toHaveLength(2);
    expect(byService.get("insert")).toHaveLength(1);
    expect(byService.get("select")).toHaveLength(1);
  });

  it("compose.yml is valid for Debian's docker-compose", () => {
    if (!requirePeer("docker-compose", "docker-compose")) return;
    const r = spawnSync("docker-compose", ["-p", "strata", "-f", join(deploy, "docker", "compose.yml"), "config", "-q"], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("kubernetes: storage StatefulSet with volumes behind a headless Service; insert/select Deployments with Services; /health readiness; resource requests", () => {
    interface Container {
      args: string[];
      readinessProbe?: { httpGet?: { path: string; port: string } };
      resources?: { requests?: Record<string, string> };
      ports?: { name: string; containerPort: number }[];
    }
    interface K8s {
      kind: string;
      metadata: { name: string };
      spec: {
        clusterIP?: string;
        serviceName?: string;
        replicas?: number;
        selector?: Record<string, unknown>;
        ports?: { port: number; targetPort?: string }[];
        template?: { metadata: { labels: Record<string, string> }; spec: { containers: Container[] } };
        volumeClaimTemplates?: { metadata: { name: string } }[];
      };
    }
    const docs = parseAllDocuments(readFileSync(join(deploy, "kubernetes", "strata.yaml"), "utf8")).map((d) => d.toJS() as K8s);
    const find = (kind: string, name: string): K8s => {
      const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
      expect(d, `${kind} ${name}`).toBeDefined();
      return d!;
    };
    const sts = find("StatefulSet", "storage");
    const headless = find("Service", sts.spec.serviceName ?? "");
    expect(headless.spec.clusterIP).toBe("None");
    expect(sts.spec.volumeClaimTemplates?.map((v) => v.metadata.name)).toEqual(["data"]);
    const storageNames = Array.from({ length: sts.spec.replicas ?? 0 }, (_, i) => `${sts.metadata.name}-${i}.${headless.metadata.name}`);
    expect(storageNames.length).toBeGreaterThanOrEqual(2);

    for (const [kind, name, service] of [["StatefulSet", "storage", "storage"], ["Deployment", "insert", "insert"], ["Deployment", "select", "select"]] as const) {
      const d = find(kind, name);
      const c = d.spec.template!.spec.containers[0]!;
      const { flags } = checkCommand(`${kind} ${name}`, c.args);
      expect(c.readinessProbe?.httpGet?.path, `${name} readiness`).toBe("/health");
      expect(c.ports?.some((p) => p.name === c.readinessProbe?.httpGet?.port), `${name}: readiness port is a named container port`).toBe(true);
      expect(Object.keys(c.resources?.requests ?? {}).sort(), `${name} requests`).toEqual(["cpu", "memory"]);
      if (service !== "storage") {
        const port = service === "insert" ? DEFAULT_PORTS.insertRpc : DEFAULT_PORTS.selectRpc;
        expect(flags.get("storageNode")?.split(","), name).toEqual(storageNames.map((s) => `${s}:${port}`));
        const svc = find("Service", `strata-${name}`);
        expect(svc.spec.ports?.[0]?.port).toBe(service === "insert" ? DEFAULT_PORTS.insertHttp : DEFAULT_PORTS.selectHttp);
      }
    }
  });

  it("examples/prometheus.yml passes promtool and remote-writes to insert", () => {
    const file = join(deploy, "examples", "prometheus.yml");
    const doc = parse(readFileSync(file, "utf8")) as { remote_write: { url: string }[] };
    expect(doc.remote_write.map((r) => new URL(r.url).pathname)).toEqual(["/insert/0/prometheus/api/v1/write"]);
    expect(new URL(doc.remote_write[0]!.url).port).toBe(String(DEFAULT_PORTS.insertHttp));
    if (!requirePeer("promtool", "prometheus")) return;
    const r = spawnSync("promtool", ["check", "config", file], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("examples/rules/strata.yml passes promtool check rules and strata-alert -dryRun (the unit's -rule)", () => {
    const file = join(deploy, "examples", "rules", "strata.yml");
    expect(isBuilt("alert"), "services/alert is built").toBe(true);
    const dry = spawnSync(process.execPath, [serviceMain("alert"), `-rule=${join(deploy, "examples", "rules", "*.yml")}`, "-dryRun"], { encoding: "utf8" });
    expect(dry.status, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^rules are valid: \d+ groups, \d+ rules$/m);
    if (!requirePeer("promtool", "prometheus")) return;
    const r = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("examples/grafana-datasource.yml is a Prometheus data source on select", () => {
    const doc = parse(readFileSync(join(deploy, "examples", "grafana-datasource.yml"), "utf8")) as {
      apiVersion: number;
      datasources: { type: string; url: string }[];
    };
    expect(doc.apiVersion).toBe(1);
    expect(doc.datasources).toHaveLength(1);
    expect(doc.datasources[0]!.type).toBe("prometheus");
    const u = new URL(doc.datasources[0]!.url);
    expect([u.port, u.pathname]).toEqual([String(DEFAULT_PORTS.selectHttp), "/select/0/prometheus"]);
  });
});
