import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, isBuilt, repoRoot, requirePeer, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";
import { UNIT_NODE_ARGS } from "./lib/cluster.js";

const unitDir = join(repoRoot, "systemd");
const units = readdirSync(unitDir).filter((f) => f.endsWith(".service"));

/** Parses `Key=Value` lines of a unit or environment file (no sections needed here). */
function keyValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#") || t.startsWith("[")) continue;
    const eq = t.indexOf("=");
    let v = t.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    m.set(t.slice(0, eq).trim(), v);
  }
  return m;
}

describe("systemd units", () => {
  it("has a unit and an environment file per service", () => {
    expect(units.sort()).toEqual(["strata-agent.service", "strata-alert.service", "strata-auth.service", "strata-insert.service", "strata-select.service", "strata-storage.service"]);
    for (const u of units) {
      const kv = keyValues(readFileSync(join(unitDir, u), "utf8"));
      for (const key of ["User", "Restart", "LimitNOFILE", "NoNewPrivileges", "ProtectSystem", "PrivateTmp", "KillSignal", "TimeoutStopSec"]) {
        expect(kv.has(key), `${u} sets ${key}`).toBe(true);
      }
      expect(kv.get("Restart")).toBe("on-failure");
      expect(kv.get("ProtectSystem")).toBe("strict");
    }
  });

  it("passes systemd-analyze verify", () => {
    if (!requirePeer("systemd-analyze", "systemd")) return;
    const r = spawnSync("systemd-analyze", ["verify", ...units.map((u) => join(unitDir, u))], { encoding: "utf8" });
    expect(r.stderr + r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  const procs: Proc[] = [];
  const dirs: { remove(): void }[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    for (const d of dirs) d.remove();
  });

  it.each(units)("%s: its ExecStart with its environment file starts a healthy service", async (unit) => {
    const kv = keyValues(readFileSync(join(unitDir, unit), "utf8"));
    const name = unit.replace(/^strata-|\.service$/g, "");
    expect(isBuilt(name), `services/${name} is built`).toBe(true);
    const env = keyValues(readFileSync(join(unitDir, `${name}.env`), "utf8"));
    expect(kv.get("EnvironmentFile")).toBe(`/etc/strata/${name}.env`);
    // ExecStart=/usr/bin/node /opt/strata/services/<name>/dist/main.js $FLAGS, with the install
    // prefix pointing at this checkout, the data path at a temp dir and ports made free.
    const data = tempDir(`systemd-${name}`);
    dirs.push(data);
    // /etc/strata holds the example files of systemd/ (e.g. auth.yml.example → auth.yml).
    for (const f of readdirSync(unitDir).filter((x) => x.endsWith(".example"))) copyFileSync(join(unitDir, f), join(data.path, f.replace(/\.example$/, "")));
    const ports = new Map<string, number>();
    const words = kv
      .get("ExecStart")!
      .split(/\s+/)
      .flatMap((w) => (w === "$FLAGS" ? env.get("FLAGS")!.split(/\s+/) : [w]));
    const args: string[] = [];
    for (const w of words.slice(1)) {
      let a = w.replace("/opt/strata", repoRoot).replace("/var/lib/strata", data.path).replace("/etc/strata/agent-scrape.yml", join(repoRoot, "deploy", "examples", "agent-scrape.yml")).replace("/etc/strata/rules", join(repoRoot, "deploy", "examples", "rules")).replace("/etc/strata", data.path);
      const m = /^(-[A-Za-z.]+(?:Addr))=:(\d+)$/.exec(a);
      if (m) {
        const p = await freePort();
        ports.set(m[1]!, p);
        a = `${m[1]}=127.0.0.1:${p}`;
      }
      args.push(a);
    }
    expect(words[0]).toBe("/usr/bin/node");
    // The test cluster and bench:ingest start the services with the units' node options.
    if (name === "storage" || name === "insert" || name === "select") expect(words.slice(1, words.findIndex((w) => w.endsWith("main.js")))).toEqual(UNIT_NODE_ARGS[name]);
    const proc = startProcess(process.execPath, args);
    procs.push(proc);
    await waitHealthy(`http://127.0.0.1:${ports.get("-httpListenAddr")}/health`, proc);
    expect(await proc.stop()).toBe(0);
  });
});
