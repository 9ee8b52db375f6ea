import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isBuilt, repoRoot, requirePeer, serviceMain, tempDir } from "./lib/procs.js";

/**
 * `promtool test rules` and `strata-alert -test` on the same rule unit-test files: both pass the
 * passing ones and fail the failing ones; and the template table of packages/rules renders in
 * Prometheus exactly as the table says.
 */

const built = isBuilt("alert");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("promtool", "prometheus");
const fixtures = join(repoRoot, "packages", "rules", "test", "fixtures");
const testFiles = readdirSync(fixtures).filter((f) => f.endsWith("_test.yml")).sort();

const promtool = (dir: string, file: string) => spawnSync("promtool", ["test", "rules", file], { cwd: dir, encoding: "utf8" });
const strata = (dir: string, file: string) => spawnSync(process.execPath, [serviceMain("alert"), `-test=${file}`], { cwd: dir, encoding: "utf8" });

describe.skipIf(!available)("rule unit tests: promtool and strata-alert -test agree", () => {
  const dir = tempDir("alert-promtool");
  afterAll(() => dir.remove());

  it.each(testFiles)("%s", (file) => {
    const want = file.startsWith("fail_") ? 1 : 0;
    const p = promtool(fixtures, file);
    const s = strata(fixtures, file);
    expect(p.status, p.stdout + p.stderr).toBe(want);
    expect(s.status, s.stdout + s.stderr).toBe(want);
    expect(s.stdout).toContain(want === 0 ? "  SUCCESS" : "  FAILED:");
  });

  it("renders every template of the table as Prometheus does", () => {
    const cases = JSON.parse(readFileSync(join(fixtures, "templates.json"), "utf8")) as [string, string, string, string][];
    let rules = "groups:\n  - name: templates\n    rules:\n";
    let tests = `rule_files: [t.yml]\ntests:\n  - input_series:\n      - series: 'probe{instance="host.example.com:9100",job="node"}'\n        values: '0'\n    alert_rule_test:\n`;
    cases.forEach(([, tmpl, v, want], i) => {
      rules += `      - alert: T${i}\n        expr: probe * 0 + ${v}\n        annotations:\n          t: ${JSON.stringify(tmpl)}\n`;
      tests += `      - eval_time: 0m\n        alertname: T${i}\n        exp_alerts:\n          - exp_labels: {instance: "host.example.com:9100", job: node}\n            exp_annotations: {t: ${JSON.stringify(want)}}\n`;
    });
    writeFileSync(join(dir.path, "t.yml"), rules);
    writeFileSync(join(dir.path, "t_test.yml"), tests);
    const p = promtool(dir.path, "t_test.yml");
    expect(p.stdout + p.stderr).toContain("SUCCESS");
    const s = strata(dir.path, "t_test.yml");
    expect(s.stdout + s.stderr).toContain("SUCCESS");
    // A wrong expectation fails under both.
    writeFileSync(join(dir.path, "t_test.yml"), tests.replace('{t: "1e+06"}', '{t: "1000000"}'));
    expect(promtool(dir.path, "t_test.yml").status).toBe(1);
    expect(strata(dir.path, "t_test.yml").status).toBe(1);
  });

  it("-dryRun validates rule files and names what is wrong", () => {
    const ok = spawnSync(process.execPath, [serviceMain("alert"), `-rule=${join(fixtures, "rules.yml")}`, "-dryRun"], { encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe("rules are valid: 2 groups, 4 rules\n");
    writeFileSync(join(dir.path, "bad.yml"), "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n");
    const bad = spawnSync(process.execPath, [serviceMain("alert"), `-rule=${join(dir.path, "*.yml")}`, "-dryRun"], { encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/bad\.yml:5:15: group "g", rule 1 \(alert "A"\): could not parse expression: /);
  });
});
