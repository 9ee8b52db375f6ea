import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isBuilt, serviceMain } from "./lib/procs.js";

/** Flags every service takes from @strata/core runService (processFlags). */
const services = ["storage", "insert", "select", "auth", "agent", "alert"] as const;
/** Each service's default -memory.heapGrowthPercent: storage, insert, agent and alert hold their data in ArrayBuffers freed only by a full GC. */
const heapGrowthDefault: Record<(typeof services)[number], number> = { storage: 100, insert: 100, select: 300, auth: 300, agent: 100, alert: 50 };

describe.skipIf(!services.every(isBuilt))("process flags", () => {
  it.each(services)("strata-%s lists -memory.heapGrowthPercent in -help and rejects a bad value with exit 2", (name) => {
    const help = spawnSync(process.execPath, [serviceMain(name), "-help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^ {2}-memory\.heapGrowthPercent int\n.*GOGC/m);
    expect(help.stdout).toMatch(new RegExp(`^ {2}-memory\\.heapGrowthPercent int\\n.*\\n\\s+\\(default ${heapGrowthDefault[name]}\\)$`, "m"));
    const bad = spawnSync(process.execPath, [serviceMain(name), "-memory.heapGrowthPercent=-3"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/-memory\.heapGrowthPercent=-3: want 0 \(V8's heuristics\) to 10000/);
  });

  it.each(services)("strata-%s -version prints its version and exits 0, as VictoriaMetrics' binaries do", (name) => {
    const want = `strata-${name}-v${(JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version} (node ${process.version})\n`;
    for (const arg of ["-version", "--version"]) {
      const r = spawnSync(process.execPath, [serviceMain(name), arg], { encoding: "utf8" });
      expect([r.status, r.stdout, r.stderr]).toEqual([0, want, ""]);
    }
    const help = spawnSync(process.execPath, [serviceMain(name), "-help"], { encoding: "utf8" });
    expect(help.stdout).toMatch(/^ {2}-version\n\s+Prints the version and exits$/m);
  });
});
